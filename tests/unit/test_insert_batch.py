"""Index inserts of one loop turn in one transaction (cache/batch.py), on a real SQLite
index: what each fill gets back, how many COMMITs were made, and a refused batch."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from pullzone.cache.batch import MOST, IndexWrites
from pullzone.cache.index import CacheIndex, Fill, StoredObject, create_schema
from pullzone.cache.stored import ResponseHead
from pullzone.sqlite import connect


def stored(n: int, key: str | None = None, size: int = 100) -> StoredObject:
    return StoredObject(
        id=f"{n:032x}",
        key_hash=key or f"key-{n}",
        zone_id=1,
        path=f"/{n}",
        query="",
        head=ResponseHead(200, "OK", (), 0.0, 0.0, size),
        body_offset=12,
        size=size,
        stored_seq=1,
    )


@pytest.fixture()
def index(tmp_path: Path) -> CacheIndex:
    conn = connect(tmp_path / "cache.db")
    create_schema(conn)
    return CacheIndex(conn)


def commits(index: CacheIndex) -> list[str]:
    seen: list[str] = []
    index.conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


async def test_the_fills_of_one_loop_turn_are_indexed_in_one_transaction(
    index: CacheIndex,
) -> None:
    made = commits(index)
    batch = IndexWrites(index)
    # Two rows for one key (no Vary): the second replaces the first, as one by one.
    futures = [batch.insert(Fill(stored(n), 1)) for n in range(10)]
    futures.append(batch.insert(Fill(stored(10, key="key-3"), 1)))
    results = await asyncio.gather(*futures)
    assert made == ["COMMIT"]
    assert [[o.id for o in r] for r in results] == [[]] * 10 + [[stored(3).id]]
    assert index.count() == 10
    assert index.total_size() == 1_000


async def test_a_burst_is_written_in_transactions_of_at_most_most_rows(
    index: CacheIndex,
) -> None:
    made = commits(index)
    batch = IndexWrites(index)
    await asyncio.gather(*(batch.insert(Fill(stored(n), 1)) for n in range(MOST * 2 + 1)))
    assert len(made) == 3
    assert index.count() == MOST * 2 + 1


async def test_a_refused_batch_refuses_every_fill_in_it_and_stores_none(
    index: CacheIndex, tmp_path: Path
) -> None:
    readonly = CacheIndex(connect(tmp_path / "cache.db"))
    readonly.conn.execute("PRAGMA query_only = ON")  # every write refused, as on a full disk
    batch = IndexWrites(readonly)
    futures = [batch.insert(Fill(stored(n), 1)) for n in range(3)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
    assert all("readonly" in str(r) for r in results), results
    assert index.count() == 0
    # The next turn's fills are written as usual.
    assert await IndexWrites(index).insert(Fill(stored(9), 1)) == []
    assert index.count() == 1


async def test_a_fill_that_read_its_keys_rows_under_its_claim_replaces_among_those(
    index: CacheIndex,
) -> None:
    """The rows read under the claim (edge/fills.py) stand for the key's rows: one deleted
    since (a purge) is replaced without error, and the key is not read again."""
    index.insert(stored(1, key="k"), 1)
    index.insert(stored(2, key="other"), 1)
    rows = index.variants("k")
    index.delete([stored(1).id])  # a purge, between the claim and the insert
    reads: list[str] = []
    index.conn.set_trace_callback(lambda sql: reads.append(sql) if "SELECT *" in sql else None)
    [replaced] = await asyncio.gather(
        IndexWrites(index).insert(Fill(stored(3, key="k"), 1, rows=rows))
    )
    assert [o.id for o in replaced] == [stored(1).id]
    assert reads == []
    assert [o.id for o in index.variants("k")] == [stored(3).id]
    assert index.total_size() == 200


async def test_fills_from_one_pool_give_back_what_they_took_in_one_statement(
    index: CacheIndex,
) -> None:
    assert index.grow("pool-1", 1, 1_000, 10_000)
    updates: list[str] = []
    index.conn.set_trace_callback(
        lambda sql: updates.append(sql) if "UPDATE fills" in sql else None
    )
    batch = IndexWrites(index)
    await asyncio.gather(
        *(batch.insert(Fill(stored(n), 1, pooled=("pool-1", 100))) for n in range(3))
    )
    assert len(updates) == 1
    assert index.used() == 1_000  # 700 left in the pool, 300 in the rows
    assert index.total_size() == 300


def test_an_object_fetched_before_a_purge_of_its_zone_is_stored_stale(index: CacheIndex) -> None:
    index.conn.execute("INSERT INTO zone_state (zone_id, last_purge_seq) VALUES (1, 5)")
    before, after = stored(1), stored(2)
    index.insert(before, 4)
    index.insert(after, 5)
    assert before.stale and not after.stale
    assert [o.stale for o in index.variants(before.key_hash)] == [True]
    assert [o.stale for o in index.variants(after.key_hash)] == [False]


async def test_a_batch_waiting_for_the_write_lock_leaves_the_event_loop_running(
    index: CacheIndex, tmp_path: Path
) -> None:
    """Another worker holds the write lock: the batch waits for it in its own thread,
    and the loop goes on meanwhile (here, to run the timer that releases the lock; on
    the loop, the wait would have held the timer back until SQLite gave up)."""
    other = connect(tmp_path / "cache.db")
    other.execute("BEGIN IMMEDIATE")
    turned = asyncio.Event()
    loop = asyncio.get_running_loop()

    def release() -> None:
        turned.set()
        other.execute("COMMIT")

    loop.call_later(0.05, release)
    batch = IndexWrites(index)
    try:
        future = batch.insert(Fill(stored(1), 1))
        assert await future == []
        assert turned.is_set()
        assert index.count() == 1
    finally:
        batch.close()
        other.close()
