"""Purge requests as the README (Purge) defines them, parsed without a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullzone.control import body as bodies
from pullzone.control.errors import STATUS_OF_REFUSAL
from pullzone.refusal import Refused
from pullzone.zones.model import CachePolicy, Zone
from pullzone.zones.plan import PurgeFile, PurgePlan
from pullzone.zones.purge import check_fields, parse_delete, plan_purge

ZONE = Zone(
    id=42, name="site", alias="site", origin="http://o.example", cnames=("cdn.example.com",)
)


def parse_body(raw: bytes, content_type: str) -> dict:
    return check_fields(bodies.decode(raw, content_type))


def plan(files: object = None, tags: object = None, zone: Zone = ZONE) -> PurgePlan:
    body: dict = {}
    if files is not None:
        body["files"] = files
    if tags is not None:
        body["tags"] = tags
    return plan_purge(body, zone, "localhost", delete=False)


def error_of(**kw: object) -> tuple[int, str]:
    with pytest.raises(Refused) as info:
        plan(**kw)  # type: ignore[arg-type]
    return STATUS_OF_REFUSAL[info.value.reason], info.value.message


@pytest.mark.parametrize("raw", [b"", b"  \n", b"{}"])
def test_no_body_empty_body_and_empty_object_purge_the_whole_zone(raw: bytes) -> None:
    body = parse_body(raw, "application/json")
    assert plan_purge(body, ZONE, "localhost", delete=True) == PurgePlan(True, delete=True)


def test_empty_files_list_never_widens_to_the_whole_zone() -> None:
    assert error_of(files=[])[0] == 400


def test_a_path_purges_every_variant_and_a_query_one_variant() -> None:
    p = plan(files=["/videos/file.mp4", "/a?x=1"])
    assert p.files == (
        PurgeFile("/videos/file.mp4", query=None, prefix=False),
        PurgeFile("/a", query="x=1", prefix=False),
    )


def test_trailing_star_is_a_prefix() -> None:
    assert plan(files=["/images/*"]).files == (PurgeFile("/images/", query=None, prefix=True),)


def test_full_urls_on_the_zone_hostnames_are_paths() -> None:
    p = plan(files=["https://cdn.example.com/x.png?v=2", "http://site.localhost/y"])
    assert [(f.path, f.query) for f in p.files] == [("/x.png", "v=2"), ("/y", None)]


def test_query_is_dropped_when_the_zone_ignores_query_strings() -> None:
    zone = Zone(id=1, name="n", alias="n", origin="http://o", cache=CachePolicy(querystring=False))
    assert plan(files=["/a?x=1"], zone=zone).files == (PurgeFile("/a", None, prefix=False),)


@pytest.mark.parametrize(
    "files",
    [
        "not a list",
        [1, 2],
        ["relative/path"],
        ["/a/../etc/passwd"],
        ["/a/%2e%2e/b"],
        ["https://other.example/x"],
        ["ftp://cdn.example.com/x"],
        ["/nul\x00byte"],
        ["/" + "a" * 8192],
        ["/a**b"],
        ["**"],
        ["/" + "*a" * 17],
        ["https://*.example.com/a.js"],
        ["http://[/a"],
        ["https://o.example.com.evil/a"],
    ],
)
def test_bad_files_are_400(files: object) -> None:
    status, message = error_of(files=files)
    assert status == 400 and message


def test_more_than_ten_thousand_files_is_413() -> None:
    assert error_of(files=[f"/f{i}" for i in range(10_001)])[0] == 413


def test_tags_are_validated_and_deduplicated() -> None:
    assert plan(tags=["b", "a", "b"]).tags == ("a", "b")
    assert error_of(tags=["has space"])[0] == 400
    assert error_of(tags=[""])[0] == 400


@pytest.mark.parametrize(
    ("raw", "status"), [(b"{not json", 400), (b"[1]", 400), (b'{"x": 1}', 400)]
)
def test_bad_bodies(raw: bytes, status: int) -> None:
    with pytest.raises(Refused) as info:
        parse_body(raw, "application/json")
    assert STATUS_OF_REFUSAL[info.value.reason] == status


def test_wrong_content_type_is_415() -> None:
    with pytest.raises(Refused) as info:
        parse_body(b'{"files": ["/a"]}', "text/plain")
    assert STATUS_OF_REFUSAL[info.value.reason] == 415


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("Yes", True),
        ("false", False),
        ("0", False),
        ("no", False),
        (None, False),
    ],
)
def test_delete_values(value: str | None, expected: bool) -> None:
    assert parse_delete(value) is expected


@given(st.text())
def test_delete_accepts_nothing_else(value: str) -> None:
    if value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return
    with pytest.raises(Refused):
        parse_delete(value)


@given(st.lists(st.text(max_size=50), max_size=20))
def test_any_list_of_strings_is_planned_or_refused_with_a_client_error(files: list[str]) -> None:
    try:
        p = plan(files=files)
    except Refused as exc:
        assert STATUS_OF_REFUSAL[exc.reason] in (400, 413)
    else:
        assert all(f.path.startswith("/") for f in p.files)


# -- globs ------------------------------------------------------------------------------


def test_a_star_inside_a_path_is_a_glob_under_its_literal_prefix() -> None:
    assert plan(files=["/img/*/thumb.png"]).files == (
        PurgeFile("/img/", None, prefix=True, glob="/img/*/thumb.png"),
    )


def test_a_file_may_start_with_a_star_and_then_matches_from_the_root() -> None:
    assert plan(files=["*.js"]).files == (PurgeFile("/", None, prefix=True, glob="/*.js"),)
    assert plan(files=["*.js"]).files == plan(files=["/*.js"]).files


def test_a_glob_or_a_prefix_with_a_query_string_purges_that_variant_of_each_path() -> None:
    assert plan(files=["/img/*.png?w=100", "/img/*?w=1"]).files == (
        PurgeFile("/img/", "w=100", prefix=True, glob="/img/*.png"),
        PurgeFile("/img/", "w=1", prefix=True),
    )


def test_a_star_in_the_query_string_is_the_character_itself() -> None:
    assert plan(files=["/a?x=*"]).files == (PurgeFile("/a", "x=*", prefix=False),)


def test_a_glob_is_spelled_as_the_cache_key_spells_paths() -> None:
    assert plan(files=["/%62*/caf\u00e9.png"]).files == (
        PurgeFile("/b", None, prefix=True, glob="/b*/caf%C3%A9.png"),
    )


def test_a_glob_on_a_zone_that_ignores_query_strings_drops_the_query() -> None:
    zone = Zone(id=1, name="n", alias="n", origin="http://o", cache=CachePolicy(querystring=False))
    assert plan(files=["/*.js?v=1"], zone=zone).files == (
        PurgeFile("/", None, prefix=True, glob="/*.js"),
    )


@pytest.mark.parametrize(
    ("files", "says"),
    [
        (["/a**b"], "single *"),
        (["/" + "*a" * 17], "at most 16"),
        (["https://*.cdn.example.com/a.js"], "not in the host"),
        (["/*" + "a" * 4095], "longer than 4096"),
    ],
)
def test_bad_globs_say_what_is_wrong(files: list[str], says: str) -> None:
    status, message = error_of(files=files)
    assert status == 400 and says in message, message


def test_sixteen_stars_are_allowed() -> None:
    assert plan(files=["/" + "*a" * 16]).files[0].glob == "/" + "*a" * 16


# -- URLs on the origin's host ----------------------------------------------------------

STATIC = Zone(
    id=7,
    name="s",
    alias="s",
    origin="https://o.example/static/",
    host_header="www.site.example:8443",
    cnames=("cdn.site.example",),
)


def paths(files: list[str], zone: Zone) -> list[tuple[str, str | None]]:
    return [(f.glob or f.path, f.query) for f in plan(files=files, zone=zone).files]


def test_a_url_on_the_origin_host_names_the_zone_path_it_was_fetched_for() -> None:
    assert paths(["http://O.example/a.js?v=1", "https://o.example:9/b"], ZONE) == [
        ("/a.js", "v=1"),
        ("/b", None),
    ]


def test_a_url_on_the_origin_host_is_relative_to_the_origin_path() -> None:
    files = [
        "https://o.example/static/a.js",
        "http://www.site.example/static/img/*.png",
        "https://o.example/static/",
    ]
    assert paths(files, STATIC) == [("/a.js", None), ("/img/*.png", None), ("/", None)]


def test_a_url_on_a_zone_hostname_is_the_path_itself_whatever_the_origin_path() -> None:
    assert paths(["https://cdn.site.example/static/a.js"], STATIC) == [("/static/a.js", None)]


def test_the_origin_path_compares_as_normalised() -> None:
    zone = STATIC.with_changes(origin="https://o.example/st%61tic")
    assert paths(["https://o.example/%73tatic/a.js"], zone) == [("/a.js", None)]


def test_an_ipv6_origin_host() -> None:
    zone = ZONE.with_changes(origin="http://[2001:db8::1]:8080")
    assert paths(["http://[2001:DB8::1]/a"], zone) == [("/a", None)]


@pytest.mark.parametrize(
    "url",
    [
        "https://o.example/other/a.js",
        "https://o.example/staticfile.js",
        "https://o.example/static",
        "https://o.example/*.js",
    ],
)
def test_a_url_on_the_origin_host_outside_the_origin_path_is_400(url: str) -> None:
    status, message = error_of(files=[url], zone=STATIC)
    assert status == 400 and "outside the zone's origin path /static/" in message, message


def test_a_url_on_a_foreign_host_is_400_naming_it() -> None:
    status, message = error_of(files=["https://evil.example/a.js"], zone=STATIC)
    assert status == 400 and "'evil.example'" in message, message
