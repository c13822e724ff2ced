"""The cache budget (--max-cache-size) held by fills in progress: rows of the index's
`fills` table, which eviction and every other fill count as used (CacheIndex.used).

A fill of unknown or large size holds a row of its own. A small fill of known size takes
its bytes from its worker's pool instead: one row per worker, grown a step at a time,
from which the insert that indexes the object takes them back (CacheIndex.insert, in the
same transaction). So most misses write no budget row of their own: one write
transaction less per miss. A pool's unused bytes count as used, at most one step per
worker: POOL_STEP, or 1/POOL_SHARE of a small cache. The rows of a worker that died are
dropped by the janitor (CacheIndex.release_dead).

Every budget write, and the eviction a full cache needs first (rows deleted, body files
unlinked), runs in the index's writes thread (cache/batch.py), never on the event loop: a
write transaction waits for the node's write lock, which the other workers hold in turn,
and under S15 these waits had a fifth of the loop's time (bench/README.md, stop 34).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable

from pullzone.cache.batch import IndexWrites
from pullzone.cache.bodies import BodyStore
from pullzone.cache.eviction import make_room
from pullzone.cache.index import CacheIndex
from pullzone.edge.stats import WorkerStats

POOL_STEP = 4 * 1024**2
POOL_SHARE = 256
SMALL_SHARE = 16  # a fill takes from the pool when it is at most 1/16 of a step

Reserve = Callable[[CacheIndex], bool]


def hold_or_evict(
    index: CacheIndex, bodies: BodyStore, limit: int, reserve: Reserve, more: int
) -> tuple[bool, int]:
    """`reserve`, or when the cache has no room, evict least-recently-used objects so
    that `more` bytes fit under `limit` and `reserve` once more: (held, how many were
    evicted)."""
    if reserve(index):
        return True, 0
    evicted = make_room(index, bodies, limit, more)
    return reserve(index), evicted


class Budget:
    """The cache budget of one worker's fills, held through its index writes thread."""

    def __init__(
        self, writes: IndexWrites, bodies: BodyStore, limit: int, stats: WorkerStats
    ) -> None:
        self.writes, self.bodies, self.limit, self.stats = writes, bodies, limit, stats
        self.pid = os.getpid()

    async def hold(self, reserve: Reserve, more: int) -> bool:
        """`hold_or_evict`, in the writes thread."""
        bodies, limit = self.bodies, self.limit
        held, evicted = await self.writes.call(
            lambda index: hold_or_evict(index, bodies, limit, reserve, more)
        )
        self.stats.evicted += evicted
        return held

    async def reserve(self, fill_id: str, size: int, more: int) -> bool:
        """Hold `size` bytes in all for fill `fill_id`, in a row of its own (`more` of
        them more than it held)."""
        pid, limit = self.pid, self.limit
        return await self.hold(lambda index: index.reserve(fill_id, pid, size, limit), more)

    def release(self, fill_id: str) -> None:
        """Give back what fill (or pool) `fill_id` held; not awaited."""
        self.writes.later(lambda index: index.release(fill_id))


class Pool:
    """One worker's budget for its small fills."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.id = f"pool-{budget.pid}-{secrets.token_hex(4)}"
        self.step = min(POOL_STEP, budget.limit // POOL_SHARE)
        self.free = 0  # held in the pool's row, taken by no fill
        self._growing: asyncio.Task[bool] | None = None

    def takes(self, length: int) -> bool:
        """Whether a fill of `length` bytes takes its budget from the pool."""
        return length <= self.step // SMALL_SHARE

    async def take(self, length: int) -> bool:
        """Take `length` bytes, growing the pool by a step when it has too few; False
        when the cache has no room for a step (the fill then holds a row of its own).
        The fills that find it short while it grows wait for that one step."""
        while self.free < length:
            if self._growing is None:
                self._growing = asyncio.get_running_loop().create_task(self._grow())
            # Shielded: a fill cancelled meanwhile leaves the step to the others.
            if not await asyncio.shield(self._growing):
                return False
        self.free -= length
        return True

    async def _grow(self) -> bool:
        pool_id, pid, step, limit = self.id, self.budget.pid, self.step, self.budget.limit
        try:
            grown = await self.budget.hold(
                lambda index: index.grow(pool_id, pid, step, limit), step
            )
        finally:
            self._growing = None
        if grown:
            self.free += step
        return grown

    def give_back(self, length: int) -> None:
        """A fill that took `length` bytes stored nothing: they are the pool's again."""
        self.free += length

    def close(self) -> None:
        self.budget.release(self.id)
