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
that end meanwhile make the next."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from pullzone.cache.index import CacheIndex, Fill, StoredObject

MOST = 64  # rows in one transaction at most: a burst is written in a few, not one long one

Pending = list[tuple[Fill, "asyncio.Future[list[StoredObject]]"]]


class InsertBatch:
    def __init__(self, index: CacheIndex) -> None:
        """`index`: on a connection only this batch's thread uses."""
        self.index = index
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pullzone-index-insert")
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
        done = loop.run_in_executor(
            self._thread, self.index.insert_many, [fill for fill, _ in batch]
        )
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
        """Once the batch being written is in; then the connection is closed."""
        self._closed = True
        self._thread.shutdown(wait=True)
        self.index.conn.close()
