"""Index inserts of fills that ended in the same turn of a worker's event loop, written
in one transaction: one wait for the write lock, one COMMIT and one WAL append however
many fills ended, where a transaction each cost twice as much per row (bench/README.md,
Misses). A fill awaits its own row's result and ends only then (cache/bodies.py: a row
before COMPLETE), so nothing a follower or another worker sees changes order."""

from __future__ import annotations

import asyncio
import sqlite3

from pullzone.cache.index import CacheIndex, Fill, StoredObject

MOST = 64  # rows in one transaction at most: a burst is written in a few, not one long one


class InsertBatch:
    def __init__(self, index: CacheIndex) -> None:
        self.index = index
        self._pending: list[tuple[Fill, asyncio.Future[list[StoredObject]]]] = []

    def insert(self, fill: Fill) -> asyncio.Future[list[StoredObject]]:
        """CacheIndex.insert, once this loop turn's fills are in: the replaced rows, or
        the sqlite3.Error that refused the batch (a full disk refuses every row alike)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[StoredObject]] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._write)
        self._pending.append((fill, future))
        if len(self._pending) >= MOST:
            self._write()
        return future

    def _write(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            results = self.index.insert_many([fill for fill, _ in pending])
        except sqlite3.Error as exc:
            for _, future in pending:
                if not future.done():
                    future.set_exception(type(exc)(*exc.args))
            return
        for (_, future), replaced in zip(pending, results, strict=True):
            if not future.done():
                future.set_result(replaced)
