"""The cache budget (--max-cache-size) held by fills in progress: rows of the index's
`fills` table, which eviction and every other fill count as used (CacheIndex.used).

A fill of unknown or large size holds a row of its own. A small fill of known size takes
its bytes from its worker's pool instead: one row per worker, grown a step at a time,
from which the insert that indexes the object takes them back (CacheIndex.insert, in the
same transaction). So most misses write no budget row of their own: one write
transaction less per miss. A pool's unused bytes count as used, at most one step per
worker: POOL_STEP, or 1/POOL_SHARE of a small cache. The rows of a worker that died are
dropped by the janitor (CacheIndex.release_dead).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from pullzone.cache.bodies import BodyStore
from pullzone.cache.eviction import make_room
from pullzone.cache.index import CacheIndex
from pullzone.edge.stats import WorkerStats

POOL_STEP = 1024**2
POOL_SHARE = 256
SMALL_SHARE = 16  # a fill takes from the pool when it is at most 1/16 of a step


def hold(
    index: CacheIndex,
    bodies: BodyStore,
    limit: int,
    stats: WorkerStats,
    reserve: Callable[[], bool],
    more: int,
) -> bool:
    """`reserve`, or when the cache has no room, evict least-recently-used objects so
    that `more` bytes fit under `limit` and `reserve` once more."""
    if reserve():
        return True
    stats.evicted += make_room(index, bodies, limit, more)
    return reserve()


class Pool:
    """One worker's budget for its small fills."""

    def __init__(
        self, index: CacheIndex, bodies: BodyStore, limit: int, stats: WorkerStats
    ) -> None:
        self.index, self.bodies, self.limit, self.stats = index, bodies, limit, stats
        self.pid = os.getpid()
        self.id = f"pool-{self.pid}-{secrets.token_hex(4)}"
        self.step = min(POOL_STEP, limit // POOL_SHARE)
        self.free = 0  # held in the pool's row, taken by no fill

    def takes(self, length: int) -> bool:
        """Whether a fill of `length` bytes takes its budget from the pool."""
        return length <= self.step // SMALL_SHARE

    def take(self, length: int) -> bool:
        """Take `length` bytes, growing the pool by a step when it has too few; False
        when the cache has no room for a step (the fill then holds a row of its own)."""
        if self.free < length:
            grown = hold(
                self.index,
                self.bodies,
                self.limit,
                self.stats,
                lambda: self.index.grow(self.id, self.pid, self.step, self.limit),
                self.step,
            )
            if not grown:
                return False
            self.free += self.step
        self.free -= length
        return True

    def give_back(self, length: int) -> None:
        """A fill that took `length` bytes stored nothing: they are the pool's again."""
        self.free += length

    def close(self) -> None:
        self.index.release(self.id)
