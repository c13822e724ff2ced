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
        ["/a*b"],
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
