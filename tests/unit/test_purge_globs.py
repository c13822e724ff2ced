"""Glob purges (docs/purge.md, Globs): the pattern as SQLite matches it, the event payload
old and new nodes read, and the applier on a real cache index, its cost bounded by the
zone's own objects."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullzone.bus.events import PURGE, Event
from pullzone.cache.applier import Applier
from pullzone.cache.bodies import COMPLETE, BodyStore, FillWriter
from pullzone.cache.index import CacheIndex, StoredObject, create_schema
from pullzone.cache.key import cache_key, key_hash
from pullzone.cache.stored import ResponseHead
from pullzone.sqlite import connect
from pullzone.zones.glob import sqlite_pattern
from pullzone.zones.model import Zone
from pullzone.zones.plan import PurgeFile, PurgePlan
from pullzone.zones.purge import plan_purge

ZONE = Zone(id=1, name="z", alias="z", origin="http://o.example")


def reference(pattern: str, path: str) -> bool:
    """The documented meaning: `*` any run of characters, `/` included; nothing else special."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), path, re.S) is not None


_MEMORY = sqlite3.connect(":memory:")
# The characters SQLite's GLOB treats specially, and a few that are not.
_TEXT = st.text(alphabet="ab/.[]?^-!*\\", max_size=12)


@given(_TEXT, st.text(alphabet="ab/.[]?^-!*\\", max_size=16))
def test_sqlite_glob_of_the_escaped_pattern_is_the_documented_match(
    pattern: str, path: str
) -> None:
    (got,) = _MEMORY.execute("SELECT ? GLOB ?", (path, sqlite_pattern(pattern))).fetchone()
    assert bool(got) is reference(pattern, path)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/*.js", "/a.js", True),
        ("/*.js", "/x/y/b.js", True),  # * crosses /
        ("/*.js", "/a.css", False),
        ("/img/*/thumb.png", "/img/1/thumb.png", True),
        ("/img/*/thumb.png", "/img/a/b/thumb.png", True),
        ("/img/*/thumb.png", "/img/thumb.png", False),
        ("/img/*/thumb.png", "/img/1/thumb.png.bak", False),
        ("/a[1]*", "/a[1].js", True),  # [ is itself, not a class
        ("/a[1]*", "/a1.js", False),
        ("/a?*", "/ab", False),  # ? is itself, not one character
    ],
)
def test_glob_examples(pattern: str, path: str, matches: bool) -> None:
    (got,) = _MEMORY.execute("SELECT ? GLOB ?", (path, sqlite_pattern(pattern))).fetchone()
    assert bool(got) is matches is reference(pattern, path)


# -- the payload ------------------------------------------------------------------------

GLOB = PurgeFile("/img/", None, prefix=True, glob="/img/*/thumb.png")
GLOB_PAYLOAD = {
    "path": "/img/",
    "query": None,
    "prefix": True,
    "glob": {"v": 1, "pattern": "/img/*/thumb.png"},
}


def test_a_glob_travels_in_its_own_versioned_field_and_back() -> None:
    assert GLOB.to_payload() == GLOB_PAYLOAD
    assert PurgeFile.from_payload(GLOB_PAYLOAD) == GLOB
    plan = PurgePlan(False, True, (GLOB,))
    assert PurgePlan.from_payload(plan.to_payload()) == plan


def test_files_without_a_glob_are_written_as_before() -> None:
    assert PurgeFile("/a", None, prefix=False).to_payload() == {
        "path": "/a",
        "query": None,
        "prefix": False,
    }


def test_a_glob_of_an_unknown_version_is_read_as_the_prefix_purge_it_also_is() -> None:
    payload = {**GLOB_PAYLOAD, "glob": {"v": 2, "pattern": "/img/{a,b}/thumb.png"}}
    assert PurgeFile.from_payload(payload) == PurgeFile("/img/", None, prefix=True)


def test_a_glob_whose_pattern_does_not_start_with_its_path_is_refused() -> None:
    with pytest.raises(ValueError):
        PurgeFile.from_payload({**GLOB_PAYLOAD, "path": "/other/"})


@given(st.text(alphabet="ab/.*", min_size=1, max_size=10), st.text(alphabet="ab/.", max_size=12))
def test_what_an_old_node_reads_covers_everything_the_glob_matches(pattern: str, path: str) -> None:
    """A node whose code predates globs reads `path`, `query` and `prefix` only: the prefix
    purge of the literal prefix, never less than the glob."""
    text = "/" + pattern.replace("**", "*")
    try:
        [item] = plan_purge({"files": [text]}, ZONE, "localhost", delete=False).files
    except Exception:  # a . or .. segment: refused, nothing to carry
        return
    old = item.to_payload()
    if reference(item.glob or "", "/" + path):
        assert old["prefix"] is True and ("/" + path).startswith(old["path"])


# -- the applier, on a real index -------------------------------------------------------


@pytest.fixture()
def store(tmp_path: Path) -> tuple[CacheIndex, BodyStore, Applier]:
    conn = connect(tmp_path / "cache.db")
    create_schema(conn)
    bodies = BodyStore(tmp_path / "cache")
    return CacheIndex(conn), bodies, Applier(conn, bodies)


def put(index: CacheIndex, bodies: BodyStore, path: str, query: str = "", zone: int = 1) -> str:
    khash = key_hash(cache_key(zone, path, query, True))
    writer = FillWriter.claim(bodies, khash)
    assert writer is not None
    head = ResponseHead(200, "OK", (), 0.0, 0.0, 4)
    writer.write_head(head)
    writer.write(b"body")
    obj = StoredObject(
        id=bodies.new_id(),
        key_hash=khash,
        zone_id=zone,
        path=path,
        query=query,
        head=head,
        body_offset=writer.body_offset,
        size=4,
        stored_seq=0,
    )
    writer.complete(bodies.object_path(obj.id))
    index.insert(obj, 0)
    writer.end(COMPLETE)
    return obj.id


def purge(seq: int, files: list[str], delete: bool = False, zone: int = 1) -> Event:
    plan = plan_purge({"files": files}, ZONE, "localhost", delete)
    return Event(seq=seq, kind=PURGE, zone_id=zone, payload=plan.to_payload(), at=0.0)


def stale(index: CacheIndex) -> dict[str, bool]:
    rows = index.conn.execute("SELECT path, query, stale FROM objects").fetchall()
    return {row[0] + (f"?{row[1]}" if row[1] else ""): bool(row[2]) for row in rows}


def test_a_soft_glob_purge_marks_exactly_the_matching_objects_of_the_zone_stale(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    for path in ("/a.js", "/x/b.js", "/a.css", "/a.json"):
        put(index, bodies, path)
    put(index, bodies, "/other-zone.js", zone=2)
    assert applier.apply(purge(1, ["*.js"])).matched == 2
    assert stale(index) == {
        "/a.js": True,
        "/x/b.js": True,
        "/a.css": False,
        "/a.json": False,
        "/other-zone.js": False,
    }


def test_a_hard_glob_purge_removes_rows_and_bytes(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    gone = put(index, bodies, "/img/1/thumb.png")
    kept = put(index, bodies, "/img/1/full.png")
    assert applier.apply(purge(1, ["/img/*/thumb.png"], delete=True)).matched == 1
    assert set(stale(index)) == {"/img/1/full.png"}
    assert not bodies.object_path(gone).exists() and bodies.object_path(kept).exists()


def test_a_glob_with_a_query_purges_that_variant_of_each_matching_path(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    for path, query in (("/a.png", "w=1"), ("/a.png", "w=2"), ("/b/c.png", "w=1")):
        put(index, bodies, path, query)
    assert applier.apply(purge(1, ["/*.png?w=1"])).matched == 2
    assert stale(index) == {"/a.png?w=1": True, "/a.png?w=2": False, "/b/c.png?w=1": True}


def test_a_prefix_with_a_query_purges_that_variant_only(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    put(index, bodies, "/img/a.png", "w=1")
    put(index, bodies, "/img/a.png", "w=2")
    assert applier.apply(purge(1, ["/img/*?w=2"])).matched == 1
    assert stale(index) == {"/img/a.png?w=1": False, "/img/a.png?w=2": True}


def test_glob_characters_of_sqlite_in_cached_paths_match_only_themselves(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    for path in ("/a[1].js", "/a1.js", "/a].js"):
        put(index, bodies, path)
    assert applier.apply(purge(1, ["/a[1]*"])).matched == 1
    assert stale(index) == {"/a[1].js": True, "/a1.js": False, "/a].js": False}


def _fill_rows(conn: sqlite3.Connection, zone: int, count: int, prefix: str) -> None:
    with conn:
        conn.executemany(
            "INSERT INTO objects (id, key_hash, zone_id, path, query, meta, body_offset, size,"
            " stored_seq, last_access) VALUES (?, ?, ?, ?, '', '{}', 0, 0, 0, 0)",
            (
                (f"{prefix}{zone}-{i}", f"k{prefix}{zone}-{i}", zone, f"/{prefix}/{i}.js")
                for i in range(count)
            ),
        )


def _steps(applier: Applier, event: Event) -> tuple[int, int]:
    """SQLite virtual-machine steps the event's application took, and what it matched:
    every row a query examines costs steps, so this counts the rows examined."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    applier.conn.set_progress_handler(count, 1)
    try:
        matched = applier.apply(event).matched
    finally:
        applier.conn.set_progress_handler(None, 1)
    return steps[0], matched


def test_a_glob_purge_costs_nothing_for_other_zones_objects_nor_outside_its_prefix(
    tmp_path: Path,
) -> None:
    def node(name: str, other_zone: int, outside_prefix: int) -> Applier:
        conn = connect(tmp_path / f"{name}.db")
        create_schema(conn)
        _fill_rows(conn, 1, 50, "img")  # what the glob looks at
        _fill_rows(conn, 2, other_zone, "img")  # another zone, same paths
        _fill_rows(conn, 1, outside_prefix, "css")  # this zone, outside /img/
        return Applier(conn, BodyStore(tmp_path / name))

    glob = purge(1, ["/img/*1.js"])
    small, matched_small = _steps(node("small", 0, 0), glob)
    big, matched_big = _steps(node("big", 100_000, 20_000), glob)
    assert matched_small == matched_big == 5  # /img/1.js, /img/11.js, … /img/41.js
    # A scan of the other rows would cost at least one step per row: 120,000.
    assert big <= small + 100, (small, big)
    # and the measure sees rows the glob does read: its own prefix's.
    more_img = node("more", 0, 0)
    _fill_rows(more_img.conn, 1, 5_000, "img/x")
    assert _steps(more_img, glob)[0] > small + 5_000
