"""Eviction (cache/eviction.py) on a real SQLite index and real body files: the order
(GDSF with the square root of the size: asked for again, small, or stored since the last
evictions ranks higher), the janitor keeping the cache under its high-water mark in the
background, and a fill that finds it full evicting only what it needs and a little
more."""

from __future__ import annotations

from pathlib import Path

from test_cache_store import put

from pullzone.cache.applier import Applier
from pullzone.cache.bodies import BodyStore
from pullzone.cache.eviction import FILL_SLACK, HIGH_WATER, LOW_WATER, make_room
from pullzone.cache.index import CacheIndex, create_schema, eviction_weight
from pullzone.server.janitor import Janitor
from pullzone.sqlite import connect

SIZE = 1000
OBJECTS = 1000  # 1,000,000 bytes stored


def parts(tmp_path: Path) -> tuple[CacheIndex, BodyStore, Applier]:
    conn = connect(tmp_path / "cache.db")
    create_schema(conn)
    bodies = BodyStore(tmp_path / "cache")
    index = CacheIndex(conn)
    for i in range(OBJECTS):
        put(index, bodies, f"/o{i}", body=b"x" * SIZE)
    return index, bodies, Applier(conn, bodies)


def stored_files(bodies: BodyStore) -> int:
    return sum(1 for _ in bodies.stored_ids())


async def test_the_janitor_evicts_ahead_of_the_limit_down_to_the_low_water_mark(
    tmp_path: Path,
) -> None:
    index, bodies, applier = parts(tmp_path)
    # Under the high-water mark: nothing goes.
    roomy = int(OBJECTS * SIZE / HIGH_WATER) + SIZE
    janitor = Janitor(index, applier, bodies, roomy, lambda _seq: None, tmp_path / "stats")
    await janitor.step()
    assert index.count() == OBJECTS and janitor.evicted == 0
    # Over it (within the limit still: no fill has had to evict yet), the lowest in
    # priority go, in steps, until the cache is at the low-water mark.
    limit = int(OBJECTS * SIZE / 0.99)
    janitor = Janitor(index, applier, bodies, limit, lambda _seq: None, tmp_path / "stats")
    await janitor.step()
    assert index.used() <= limit * LOW_WATER < index.used() + SIZE
    assert janitor.evicted == OBJECTS - index.count() > 0
    assert stored_files(bodies) == index.count()
    # All alike in size and accesses: the first stored went, and only they.
    kept = [_has(index, f"/o{i}") for i in range(OBJECTS)]
    assert kept == [False] * janitor.evicted + [True] * index.count()


def _has(index: CacheIndex, path: str) -> bool:
    row = index.conn.execute("SELECT 1 FROM objects WHERE path = ?", (path,)).fetchone()
    return row is not None


def test_a_fill_that_finds_the_cache_full_evicts_what_it_needs_and_a_little_more(
    tmp_path: Path,
) -> None:
    index, bodies, _ = parts(tmp_path)
    limit = OBJECTS * SIZE  # full
    evicted = make_room(index, bodies, limit, 10 * SIZE)
    wanted = 10 * SIZE + int(limit * FILL_SLACK)
    assert evicted == wanted // SIZE
    assert index.used() == limit - wanted
    assert stored_files(bodies) == OBJECTS - evicted


def empty(tmp_path: Path) -> tuple[CacheIndex, BodyStore]:
    conn = connect(tmp_path / "cache.db")
    create_schema(conn)
    return CacheIndex(conn), BodyStore(tmp_path / "cache")


def evict_one(index: CacheIndex, bodies: BodyStore) -> None:
    make_room(index, bodies, index.used(), 1)  # FILL_SLACK of a tiny limit: 0 bytes


def test_an_object_asked_for_again_outlives_newer_ones_asked_for_once(tmp_path: Path) -> None:
    """Not LRU: object a, last asked for before b and c were stored, was asked for
    twice more, and outranks them."""
    index, bodies = empty(tmp_path)
    a = put(index, bodies, "/a", body=b"x" * SIZE)
    index.touch({a.id: 1.0})
    index.touch({a.id: 2.0})
    b = put(index, bodies, "/b", body=b"x" * SIZE)
    put(index, bodies, "/c", body=b"x" * SIZE)
    evict_one(index, bodies)
    assert index.get(b.id) is None
    assert index.get(a.id) is not None and index.count() == 2


def test_among_objects_asked_for_alike_a_large_one_goes_before_a_small_one(
    tmp_path: Path,
) -> None:
    index, bodies = empty(tmp_path)
    small = put(index, bodies, "/small", body=b"s" * 4096)
    large = put(index, bodies, "/large", body=b"l" * 65536)
    assert eviction_weight(4096) == 0.5 and eviction_weight(65536) == 0.125
    evict_one(index, bodies)
    assert index.get(large.id) is None and index.get(small.id) is not None


def test_what_is_no_longer_asked_for_ages_out_as_the_floor_rises(tmp_path: Path) -> None:
    """Not LFU: an object asked for often once, then never again, is evicted after the
    objects stored since have pushed the floor above it."""
    index, bodies = empty(tmp_path)
    popular = put(index, bodies, "/popular", body=b"p" * SIZE)
    for at in range(3):
        index.touch({popular.id: float(at)})  # 4 accesses: 4 x the weight
    newer = [put(index, bodies, f"/new{i}", body=b"n" * SIZE) for i in range(2)]
    for i in range(2, 12):
        evict_one(index, bodies)  # the lowest: a new one, whose priority is the floor now
        if index.get(popular.id) is None:
            break
        newer.append(put(index, bodies, f"/new{i}", body=b"n" * SIZE))
    assert index.get(popular.id) is None
    assert i > 2  # not at once: it outranked the first objects stored after it
    floor = index.conn.execute("SELECT value FROM cache_meta WHERE name = 'eviction_floor'")
    assert floor.fetchone()[0] >= 4 * eviction_weight(SIZE)


def test_an_error_goes_before_content_however_often_it_was_asked_for(tmp_path: Path) -> None:
    index, bodies = empty(tmp_path)
    content = put(index, bodies, "/content", body=b"c" * SIZE)
    error = put(index, bodies, "/missing", body=b"e" * 10, status=404)
    for at in range(5):
        index.touch({error.id: float(at)})
    evict_one(index, bodies)
    assert index.get(error.id) is None and index.get(content.id) is not None


def test_an_index_made_before_the_eviction_priorities_gets_them(tmp_path: Path) -> None:
    """A cache.db of an earlier release (eviction by last access: no hits, weight and
    priority columns, an index on last_access) is migrated at start: its objects keep
    their place, rank by their size, errors last."""
    index, bodies = empty(tmp_path)
    large = put(index, bodies, "/large", body=b"l" * 65536)
    small = put(index, bodies, "/small", body=b"s" * 4096)
    error = put(index, bodies, "/missing", body=b"e", status=404)
    conn = index.conn
    conn.execute("DROP INDEX objects_priority")
    for column in ("priority", "weight", "hits"):
        conn.execute(f"ALTER TABLE objects DROP COLUMN {column}")
    conn.execute("CREATE INDEX objects_lru ON objects (last_access)")
    create_schema(conn)
    names = {row[1] for row in conn.execute("PRAGMA index_list(objects)")}
    assert "objects_priority" in names and "objects_lru" not in names
    order = [object_id for object_id, _, _ in index.eviction_order(10)]
    assert order == [error.id, large.id, small.id]
    index.touch({small.id: 1.0})  # and accesses are recorded as they are now
    hits = conn.execute("SELECT hits FROM objects WHERE id = ?", (small.id,)).fetchone()[0]
    assert hits == 2


def test_a_refetched_object_keeps_the_accesses_of_the_one_it_replaces(tmp_path: Path) -> None:
    """An object asked for often and fetched again (expired, or revalidated with a new
    body) is not a new object: it still outranks one stored once since."""
    index, bodies = empty(tmp_path)
    first = put(index, bodies, "/often", body=b"1" * SIZE)
    for at in range(3):
        index.touch({first.id: float(at)})
    again = put(index, bodies, "/often", body=b"2" * SIZE)  # replaces it
    assert index.get(first.id) is None
    once = put(index, bodies, "/once", body=b"o" * SIZE)
    evict_one(index, bodies)
    assert index.get(once.id) is None and index.get(again.id) is not None
