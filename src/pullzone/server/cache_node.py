"""A node's cache side: applies the node's event log to the cache index, in order, then
tells the edge workers (the shared sequence)."""

from __future__ import annotations

import asyncio
import logging

from pullzone.bus import local
from pullzone.bus.events import PREFETCH, Event
from pullzone.bus.signal import SeqSignal
from pullzone.cache.applier import Applier
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex, create_schema
from pullzone.config import Settings
from pullzone.server.prefetcher import Prefetcher
from pullzone.sqlite import connect

log = logging.getLogger("pullzone.cache")


class CacheNode:
    def __init__(self, settings: Settings) -> None:
        self.control = connect(settings.control_db, private=True)
        local.create_schema(self.control)
        cache = connect(settings.cache_db)
        create_schema(cache)
        self.bodies = BodyStore(settings.cache_dir)
        self.index = CacheIndex(cache)
        self.applier = Applier(cache, self.bodies)
        self.signal = SeqSignal(settings.seq_path)
        self.prefetcher = Prefetcher(settings)
        self._lock = asyncio.Lock()

    def catch_up(self) -> dict[int, int]:
        """Apply every stored event not yet applied, then tell the workers; returns the
        objects each selective purge matched, by sequence."""
        seq = self.applier.applied_seq()
        matched = {}
        for event in local.read_since(self.control, seq):
            try:
                applied = self.applier.apply(event)
            except local.UNAPPLICABLE as exc:
                # One bad event must not stop the events behind it (docs/hardening.md).
                log.error(
                    "event %d (%s) cannot be applied, quarantined: %r", event.seq, event.kind, exc
                )
                local.quarantine(self.control, event, exc)
                self.applier.skip(event.seq)
                seq = event.seq
                continue
            seq, matched[applied.seq] = applied.seq, applied.matched
        self.signal.publish(seq)
        return matched

    def restart_at(self, seq: int, zones: set[int]) -> None:
        """Stand at `seq`, every stored object to be revalidated (Applier.restart_at); the
        workers load the restored replica again (bus/signal.py)."""
        self.applier.restart_at(seq, zones)
        self.signal.count_restore()
        self.signal.publish(seq)

    async def on_event(self, event: Event) -> int | None:
        """A single node's `LocalLog` hook: the API answers only after this returns."""
        async with self._lock:
            matched = self.catch_up().get(event.seq)
        await self.prefetch(event)
        return matched

    async def prefetch(self, event: Event) -> None:
        """The objects of a prefetch event, stored through this node's edge (applied in
        the index already: nothing there changes)."""
        if event.kind != PREFETCH:
            return
        fetched = await self.prefetcher.run(event)
        if fetched is not None and fetched.failed:
            log.warning(
                "prefetch %d: %d of %d objects not stored",
                event.seq,
                fetched.failed,
                fetched.failed + fetched.stored,
            )
