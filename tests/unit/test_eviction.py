"""LRU eviction (cache/eviction.py) on a real SQLite index and real body files: the
janitor keeps the cache under its high-water mark in the background, and a fill that
finds it full evicts only what it needs and a little more."""

from __future__ import annotations

from pathlib import Path

from test_cache_store import put

from pullzone.cache.applier import Applier
from pullzone.cache.bodies import BodyStore
from pullzone.cache.eviction import FILL_SLACK, HIGH_WATER, LOW_WATER, make_room
from pullzone.cache.index import CacheIndex, create_schema
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
    # Over it (within the limit still: no fill has had to evict yet), the least
    # recently used go, in steps, until the cache is at the low-water mark.
    limit = int(OBJECTS * SIZE / 0.99)
    janitor = Janitor(index, applier, bodies, limit, lambda _seq: None, tmp_path / "stats")
    await janitor.step()
    assert index.used() <= limit * LOW_WATER < index.used() + SIZE
    assert janitor.evicted == OBJECTS - index.count() > 0
    assert stored_files(bodies) == index.count()
    # The first stored (the least recently used) went, and only they.
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
