"""What the CLI asks the API for: option values to 5centscdn fields, zone references to ids."""

from __future__ import annotations

from typing import Any

import pytest

from pullzone.cli.options import yes_no
from pullzone.cli.zone_lookup import matching_zones
from pullzone.cli.zones import update_call, zone_changes


def changes(**given: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    names = [
        *("name", "origin", "alias", "cnames", "host_header"),
        *("cache", "expiry", "querystring", "cachecontrol", "usestale", "revalidate"),
    ]
    return zone_changes(*(given.get(n) for n in names))


def test_zone_fields_in_5centscdn_names() -> None:
    fields, cache = changes(
        name="site",
        origin="https://o.example",
        alias="site",
        cnames=" a.example , b.example,,",
        host_header="o.example",
        cache="1h",
        usestale="N",
    )
    assert fields == {
        "name": "site",
        "origin": "https://o.example",
        "alias": "site",
        "cnames": "a.example,b.example",
        "hostHeader": "o.example",
    }
    assert cache == {"cache": "1h", "usestale": "N"}


def test_only_given_options_are_sent() -> None:
    assert changes() == ({}, {})
    assert changes(cnames="", expiry="") == ({"cnames": ""}, {"expiry": ""})


def test_cache_options_alone_update_the_cache_block_alone() -> None:
    call = update_call(4, {}, {"cache": "30m", "revalidate": "N"})
    assert (call.method, call.path, call.json) == (
        "POST",
        "/zones/http/pull/4/cache",
        {"cache": "30m", "revalidate": "N"},
    )


def test_zone_options_with_cache_options_make_one_update() -> None:
    call = update_call(4, {"name": "n"}, {"cache": "30m"})
    assert (call.method, call.path, call.json) == (
        "POST",
        "/zones/http/pull/4",
        {"name": "n", "cache": {"cache": "30m"}},
    )
    call = update_call(4, {"origin": "http://o"}, {})
    assert call.json == {"origin": "http://o"}


@pytest.mark.parametrize(
    ("value", "flag"),
    [("Y", "Y"), ("y", "Y"), ("yes", "Y"), ("true", "Y"), ("N", "N"), ("no", "N"), ("0", "N")],
)
def test_yes_no_flags(value: str, flag: str) -> None:
    assert yes_no(value) == flag


ZONES = [
    {
        "id": 1,
        "alias": "site",
        "name": "Site",
        "fqdn": "site.localhost",
        "cnames": "a.example,b.example",
        "cnamesArr": ["a.example", "b.example"],
    },
    {"id": 2, "alias": "two", "name": "Site", "fqdn": "two.localhost", "cnames": ""},
    {"id": 3, "alias": "three", "name": "Third", "fqdn": "three.localhost", "cnames": "10.0.0.3"},
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
    assert [z["id"] for z in matching_zones(ZONES, ref)] == ids


def test_several_zones_of_one_name() -> None:
    zones = [{**ZONES[1], "id": 5, "alias": "five"}, {**ZONES[1], "id": 6, "alias": "six"}]
    assert [z["id"] for z in matching_zones(zones, "Site")] == [5, 6]
