"""Background upkeep of the cache on disk: LRU eviction to the size limit, reclaiming the
bytes of hard whole-zone purges, and removing files no index row names.

Its writes are best-effort: on a full disk a step fails soft and is counted
(`pullzone_write_failures{what="janitor"}`), and is tried again at the next interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from pullzone.cache.applier import Applier
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex
from pullzone.control.stats import write_janitor
from pullzone.edge.stats import WriteFailures

log = logging.getLogger(__name__)

INTERVAL = 0.5
EVICT_BATCH = 500
LOW_WATER = 0.95  # evict down to this fraction of the limit, so eviction runs in batches


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
        """At startup: body files without an index row (a crash between link and insert)."""
        known = self.index.ids()
        removed = 0
        for object_id, path in self.bodies.stored_ids():
            if object_id not in known:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def evict(self) -> int:
        """Delete least-recently-used objects until the cache is under its limit."""
        evicted = 0
        total = self.index.total_size()
        if total <= self.max_size:
            return 0
        target = int(self.max_size * LOW_WATER)
        while total > target:
            victims = []
            for object_id, size in self.index.least_recently_used(EVICT_BATCH):
                victims.append(object_id)
                total -= size
                if total <= target:
                    break
            if not victims:
                break
            self.index.delete(victims)
            self.bodies.remove(victims)
            evicted += len(victims)
        self.evicted += evicted
        return evicted

    async def step(self) -> None:
        with self.writes.soft("janitor"):
            applied = self.applier.applied_seq()
            while self.applier.reclaim() > 0:
                await asyncio.sleep(0)  # reclaiming a big zone must not stall the API
            self.on_reclaimed(applied)  # every hard purge up to `applied` is done
            self.evict()
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
