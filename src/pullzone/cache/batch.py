"""Index inserts of fills that ended in the same turn of a worker's event loop, written
in one transaction: one wait for the write lock, one COMMIT and one WAL append however
many fills ended, where a transaction each cost twice as much per row (bench/README.md,
Misses). A fill awaits its own row's result and ends only then (cache/bodies.py: a row
before COMPLETE), so nothing a follower or another worker sees changes order.

The transactions run in a thread of their own, on a connection of their own: the wait
for the write lock (the other workers hold it in turn; SQLite's busy handler sleeps up
to 100 ms at a time) and a COMMIT's checkpoint (an fsync behind the disk's queue) no
longer stop the event loop, whose HITs went on waiting behind them (S15: 16% of
the loop's time, bench/README.md, stop 32). One batch is written at a time; the fills
that end meanwhile make the next.

The same thread runs the worker's other index writes that a request would wait for
(`call`, `later`): the cache budget a fill holds and gives back, and the eviction that
makes room for it (edge/budget.py), with its unlinks. In order: a budget held before a
fill's insert is submitted is in the index before that insert.

The node's writes threads (one per worker) take turns through a lock file's flock
(`<index>-writes.lock`) before each transaction: the one waiting is woken when the lock
is released, where SQLite's busy handler sleeps 1, 2, 5 … up to 100 ms at a time between
tries. Those sleeps had a tenth of each writes thread's time under S15, and every miss
of the batch waited with it (bench/README.md, stop 34). Nothing else takes that lock, so
waiting for it never waits on what the thread itself holds; the other writers (the
janitor, purges, LRU touches) meet it through SQLite's busy handler as before."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pullzone.cache.index import CacheIndex, Fill, StoredObject

log = logging.getLogger(__name__)

T = TypeVar("T")

MOST = 64  # rows in one transaction at most: a burst is written in a few, not one long one

Pending = list[tuple[Fill, "asyncio.Future[list[StoredObject]]"]]


class IndexWrites:
    def __init__(self, index: CacheIndex) -> None:
        """`index`: on a connection only this batch's thread uses."""
        self.index = index
        (_, _, path) = index.conn.execute("PRAGMA database_list").fetchone()
        self._turns = os.open(f"{path}-writes.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pullzone-index-writes")
        self._pending: Pending = []
        self._writing = False
        self._closed = False

    def insert(self, fill: Fill) -> asyncio.Future[list[StoredObject]]:
        """CacheIndex.insert, once this loop turn's fills are in: the replaced rows, or
        the sqlite3.Error that refused the batch (a full disk refuses every row alike)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[StoredObject]] = loop.create_future()
        if not self._pending and not self._writing:
            loop.call_soon(self._write)
        self._pending.append((fill, future))
        return future

    async def call(self, work: Callable[[CacheIndex], T]) -> T:
        """`work(index)` in the thread, on its connection, between two batches."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._in_turn, work)

    def later(self, work: Callable[[CacheIndex], object]) -> None:
        """`work(index)` in the thread, not awaited: a write nothing waits for (budget
        given back). A failure is logged; once the worker is stopping it is not run (the
        janitor drops what a stopped worker held: CacheIndex.release_dead)."""

        def run(index: CacheIndex) -> None:
            try:
                work(index)
            except sqlite3.Error as exc:
                log.warning("index write failed: %s", exc)

        with contextlib.suppress(RuntimeError):  # the thread is shut down
            self._thread.submit(self._in_turn, run)

    def _in_turn(self, work: Callable[[CacheIndex], T]) -> T:
        """In the thread: `work(index)` holding the writes threads' turn."""
        fcntl.flock(self._turns, fcntl.LOCK_EX)
        try:
            return work(self.index)
        finally:
            fcntl.flock(self._turns, fcntl.LOCK_UN)

    def _write(self) -> None:
        batch, self._pending = self._pending[:MOST], self._pending[MOST:]
        if not batch:
            return
        if self._closed:  # the worker is stopping: its fills are cancelled too
            for _, future in [*batch, *self._pending]:
                future.cancel()
            self._pending = []
            return
        self._writing = True
        loop = asyncio.get_running_loop()
        fills = [fill for fill, _ in batch]
        done = loop.run_in_executor(self._thread, self._in_turn, lambda i: i.insert_many(fills))
        done.add_done_callback(lambda written: self._written(batch, written))

    def _written(self, batch: Pending, written: asyncio.Future[list[list[StoredObject]]]) -> None:
        self._writing = False
        if written.cancelled():  # the loop is closing
            for _, future in batch:
                future.cancel()
            return
        exc = written.exception()
        for n, (_, future) in enumerate(batch):
            if future.done():
                continue  # its fill was cancelled: the row is written all the same
            if exc is None:
                future.set_result(written.result()[n])
            elif isinstance(exc, sqlite3.Error):
                future.set_exception(type(exc)(*exc.args))
            else:
                future.set_exception(exc)
        self._write()

    def close(self) -> None:
        """Once the batch being written and the writes submitted are in; then the
        connection is closed."""
        self._closed = True
        self._thread.shutdown(wait=True)
        self.index.conn.close()
        os.close(self._turns)
