"""Background upkeep of the cache on disk: LRU eviction ahead of the size limit, reclaiming the
bytes of hard whole-zone purges, and removing files no index row names.

Its writes are best-effort: on a full disk a step fails soft and is counted
(`pullzone_write_failures{what="janitor"}`), and is tried again at the next interval."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from pullzone.cache.applier import Applier
from pullzone.cache.bodies import BodyStore
from pullzone.cache.eviction import HIGH_WATER, LOW_WATER, evict_to
from pullzone.cache.index import CacheIndex
from pullzone.control.stats import write_janitor
from pullzone.edge.stats import WriteFailures

log = logging.getLogger(__name__)

INTERVAL = 0.5
EVICT_STEP = 200  # objects evicted between two turns of the loop (the API's too)


class Janitor:
    def __init__(
        self,
        index: CacheIndex,
        applier: Applier,
        bodies: BodyStore,
        max_size: int,
        on_reclaimed: Callable[[int], None],
        stats_dir: Path,
    ) -> None:
        self.stats_dir = stats_dir
        self.index = index
        self.on_reclaimed = on_reclaimed
        self.applier = applier
        self.bodies = bodies
        self.max_size = max_size
        self.evicted = 0
        self.writes = WriteFailures()
        self._reported: tuple[int, dict[str, int]] = (0, {})  # what janitor.json holds

    def remove_orphans(self) -> int:
        """At startup: body files without an index row (a crash between link and insert),
        and the budget fills of the last run held (no fill runs yet)."""
        self.index.release_dead(lambda _pid: False)
        known = self.index.ids()
        removed = 0
        for object_id, path in self.bodies.stored_ids():
            if object_id not in known:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    async def evict(self) -> int:
        """Once the cache, with the budget fills in progress hold, is over HIGH_WATER of
        its limit, delete least-recently-used objects down to LOW_WATER (cache/eviction.py),
        a few at a time: the fills then find room without evicting themselves."""
        self.index.release_dead(_alive)
        if self.index.used() <= self.max_size * HIGH_WATER:
            return 0
        target = int(self.max_size * LOW_WATER)
        evicted = 0
        while True:
            step = evict_to(self.index, self.bodies, target, EVICT_STEP)
            evicted += step
            self.evicted += step
            if step < EVICT_STEP:
                return evicted
            await asyncio.sleep(0)

    async def step(self) -> None:
        with self.writes.soft("janitor"):
            applied = self.applier.applied_seq()
            while self.applier.reclaim() > 0:
                await asyncio.sleep(0)  # reclaiming a big zone must not stall the API
            self.on_reclaimed(applied)  # every hard purge up to `applied` is done
            await self.evict()
        report = (self.evicted, dict(self.writes.counts))
        if report != self._reported:
            with self.writes.soft("stats"):
                write_janitor(self.stats_dir, *report)
                self._reported = report

    async def run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                await self.step()
            except Exception:
                log.exception("janitor step failed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
