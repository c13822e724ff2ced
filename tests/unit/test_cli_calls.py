"""What the CLI asks the API for: option values to 5centscdn fields, zone references to ids."""

from __future__ import annotations

import pytest

from pullzone.cli.options import yes_no
from pullzone.cli.zone_lookup import matching_zones
from pullzone.cli.zones import update_call, zone_options
from pullzone.client import CachePolicy, Zone


def test_zone_fields_in_5centscdn_names() -> None:
    changes = zone_options(
        alias="site", cnames=" a.example , b.example,,", host_header="o.example", cache="1h",
        usestale="N",
    )  # fmt: skip
    assert changes == {
        "alias": "site",
        "cnames": "a.example,b.example",
        "host_header": "o.example",
        "cache": {"cache": "1h", "usestale": "N"},
    }
    call = update_call(4, {"name": "site", "origin": "https://o.example", **changes})
    assert call.json == {
        "name": "site",
        "origin": "https://o.example",
        "alias": "site",
        "cnames": "a.example,b.example",
        "hostHeader": "o.example",
        "cache": {"cache": "1h", "usestale": "N"},
    }


def test_only_given_options_are_sent() -> None:
    assert zone_options() == {}
    assert zone_options(cnames="", expiry="") == {"cnames": "", "cache": {"expiry": ""}}


def test_cache_options_alone_update_the_cache_block_alone() -> None:
    call = update_call(4, {"cache": {"cache": "30m", "revalidate": "N"}})
    assert (call.method, call.path, call.json) == (
        "POST",
        "/zones/http/pull/4/cache",
        {"cache": "30m", "revalidate": "N"},
    )


def test_zone_options_with_cache_options_make_one_update() -> None:
    call = update_call(4, {"name": "n", "cache": {"cache": "30m"}})
    assert (call.method, call.path, call.json) == (
        "POST",
        "/zones/http/pull/4",
        {"name": "n", "cache": {"cache": "30m"}},
    )
    call = update_call(4, {"origin": "http://o"})
    assert call.json == {"origin": "http://o"}


@pytest.mark.parametrize(
    ("value", "flag"),
    [("Y", "Y"), ("y", "Y"), ("yes", "Y"), ("true", "Y"), ("N", "N"), ("no", "N"), ("0", "N")],
)
def test_yes_no_flags(value: str, flag: str) -> None:
    assert yes_no(value) == flag


def zone(id: int, alias: str, name: str, cnames: tuple[str, ...] = ()) -> Zone:
    policy = CachePolicy("4h", "", True, True, True, True)
    return Zone(
        id, name, alias, "http://o", f"{alias}.localhost", "", cnames, False, "Enabled", "", "",
        policy,
    )  # fmt: skip


ZONES = [
    zone(1, "site", "Site", ("a.example", "b.example")),
    zone(2, "two", "Site"),
    zone(3, "three", "Third", ("10.0.0.3",)),
]


@pytest.mark.parametrize(
    ("ref", "ids"),
    [
        ("site", [1]),
        ("SITE.localhost", [1]),
        ("b.example", [1]),
        ("b.example.", [1]),
        ("two.localhost", [2]),
        ("10.0.0.3", [3]),
        ("Third", [3]),
        ("Site", [1]),  # the alias "site" matches before the two zones named "Site"
        ("nothing", []),
    ],
)
def test_zone_references(ref: str, ids: list[int]) -> None:
    assert [z.id for z in matching_zones(ZONES, ref)] == ids


def test_several_zones_of_one_name() -> None:
    zones = [zone(5, "five", "Site"), zone(6, "six", "Site")]
    assert [z.id for z in matching_zones(zones, "Site")] == [5, 6]
