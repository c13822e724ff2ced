"""The cache budget of fills in progress (edge/budget.py) on a real SQLite index and real
body files: a worker's pool for small fills, what it counts as used, and eviction, all
written in the index's writes thread (cache/batch.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from pullzone.cache.batch import IndexWrites
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex, Fill, StoredObject, create_schema
from pullzone.cache.stored import ResponseHead
from pullzone.edge.budget import POOL_STEP, SMALL_SHARE, Budget, Pool
from pullzone.edge.stats import WorkerStats
from pullzone.sqlite import connect

KIB = 1024


@pytest.fixture()
def parts(tmp_path: Path) -> tuple[CacheIndex, BodyStore, WorkerStats]:
    conn = connect(tmp_path / "cache.db")
    create_schema(conn)
    return CacheIndex(conn), BodyStore(tmp_path / "cache"), WorkerStats(tmp_path / "stats")


def stored(bodies: BodyStore, n: int, size: int) -> StoredObject:
    obj = StoredObject(
        id=bodies.new_id(),
        key_hash=f"key-{n}",
        zone_id=1,
        path=f"/{n}",
        query="",
        head=ResponseHead(200, "OK", (), 0.0, 0.0, size),
        body_offset=0,
        size=size,
        stored_seq=1,
    )
    path = bodies.object_path(obj.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return obj


def pool_of(index: CacheIndex, bodies: BodyStore, limit: int, stats: WorkerStats) -> Pool:
    return Pool(Budget(IndexWrites(index), bodies, limit, stats))


def writes(index: CacheIndex) -> list[str]:
    seen: list[str] = []
    index.conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


async def test_small_fills_take_their_budget_from_the_pool_one_write_per_step(
    parts: tuple[CacheIndex, BodyStore, WorkerStats],
) -> None:
    index, bodies, stats = parts
    pool = pool_of(index, bodies, 10 * 1024**3, stats)
    assert pool.step == POOL_STEP and pool.takes(POOL_STEP // SMALL_SHARE)
    assert not pool.takes(POOL_STEP // SMALL_SHARE + 1)
    made = writes(index)
    for _ in range(100):
        assert await pool.take(10 * KIB)
    assert len(made) == 1  # one step holds 100 fills of 10 KiB
    assert index.used() == POOL_STEP
    # Indexing an object moves its bytes from the pool's row into the stored total.
    objects = [stored(bodies, n, 10 * KIB) for n in range(100)]
    index.insert_many([Fill(obj, 1, pooled=(pool.id, 10 * KIB)) for obj in objects])
    assert index.total_size() == 100 * 10 * KIB
    assert index.used() == index.total_size() + pool.free
    # A fill that stored nothing gives its bytes back: the next one takes them, no write.
    assert await pool.take(10 * KIB)
    pool.give_back(10 * KIB)
    made.clear()
    assert await pool.take(10 * KIB)
    assert made == []


async def test_a_pool_is_a_small_share_of_a_small_cache_and_the_limit_holds(
    parts: tuple[CacheIndex, BodyStore, WorkerStats],
) -> None:
    index, bodies, stats = parts
    limit = 2 * 1024**2
    pool = pool_of(index, bodies, limit, stats)
    assert pool.step == limit // 256
    first = [stored(bodies, n, 40 * KIB) for n in range(51)]
    first.append(stored(bodies, 51, 5 * KIB))  # 2,045 KiB of 2,048: no room for a step
    index.insert_many([Fill(obj, 1) for obj in first])
    index.conn.execute("UPDATE objects SET last_access = 0 WHERE key_hash = 'key-0'")
    # The pool cannot grow within the limit: the least recently used object goes first.
    assert await pool.take(pool.step // SMALL_SHARE)
    assert stats.evicted >= 1
    assert index.get(first[0].id) is None
    assert index.used() <= limit


async def test_a_pool_with_no_room_left_refuses_and_holds_nothing(
    parts: tuple[CacheIndex, BodyStore, WorkerStats],
) -> None:
    index, bodies, stats = parts
    limit = 1024**2
    pool = pool_of(index, bodies, limit, stats)
    assert index.reserve("someone-else", 1, limit, limit)  # every byte held by a fill
    assert not await pool.take(1 * KIB)
    assert index.used() == limit and pool.free == 0


async def test_fills_that_find_the_pool_short_together_wait_for_one_step_off_the_loop(
    parts: tuple[CacheIndex, BodyStore, WorkerStats],
) -> None:
    index, bodies, stats = parts
    pool = pool_of(index, bodies, 10 * 1024**3, stats)
    threads: set[str] = set()
    index.conn.set_trace_callback(
        lambda sql: threads.add(threading.current_thread().name) if sql == "COMMIT" else None
    )
    # 50 fills of 10 KiB at once: one step holds them all, so one write, made in the
    # writes thread (the loop's thread never waits for the node's write lock).
    assert all(await asyncio.gather(*(pool.take(10 * KIB) for _ in range(50))))
    assert index.used() == POOL_STEP
    assert pool.free == POOL_STEP - 50 * 10 * KIB
    assert threads and threading.current_thread().name not in threads
    assert all(name.startswith("pullzone-index-writes") for name in threads)


async def test_a_fill_cancelled_while_the_pool_grows_leaves_the_step_to_the_others(
    parts: tuple[CacheIndex, BodyStore, WorkerStats],
) -> None:
    index, bodies, stats = parts
    pool = pool_of(index, bodies, 10 * 1024**3, stats)
    first = asyncio.ensure_future(pool.take(10 * KIB))
    second = asyncio.ensure_future(pool.take(10 * KIB))
    await asyncio.sleep(0)  # both wait for the one step
    first.cancel()
    assert await second
    assert pool.free == POOL_STEP - 10 * KIB  # the step counted once, the cancelled fill took none
    assert index.used() == POOL_STEP
