"""Writes the node's traffic history (control/stats_history.py) once a minute, in the
supervisor process, off the request path: what the workers' snapshots (edge/stats.py)
grew by since the last write goes to the minute that just ended (and its hour).

The write is best-effort: on a full disk it fails soft (logged once, counted as
`pullzone_write_failures_total{what="stats_history"}`), and what was not written stays
pending, to be added by the next write that succeeds. A query adds what is pending to
the current bucket, so answers are never a minute behind. Stopping the node writes what
is pending; a node killed (kill -9, power loss) loses at most the last minute.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Collection

from pullzone.config import Settings
from pullzone.control.stats_history import Figures, HistoryStore, Window, bucket, cumulative, grown
from pullzone.control.stats_query import Span
from pullzone.edge.stats import WriteFailures, read_snapshots

log = logging.getLogger(__name__)

FLUSH_EVERY = 60.0
# Tests only: seconds between writes instead of a minute.
FLUSH_ENV = "PULLZONE_STATS_FLUSH_SECONDS"
# Workers write their snapshots once a second: what a write finds was counted up to
# this long before it, and goes to the bucket that held that moment.
SNAPSHOT_LAG = 2.0
WHAT = "stats_history"  # its kind in pullzone_write_failures


def flush_every() -> float:
    try:
        return max(0.1, float(os.environ.get(FLUSH_ENV, FLUSH_EVERY)))
    except ValueError:
        return FLUSH_EVERY


class Recorder:
    def __init__(
        self,
        settings: Settings,
        *,
        every: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stats_dir = settings.stats_dir
        self.store = HistoryStore(settings.stats_db)
        self.every = flush_every() if every is None else every
        self.clock = clock
        self.writes = WriteFailures()
        self.written: Figures = {}  # the workers' counters as far as stats.db holds them
        self._writing = threading.Lock()  # the periodic write (a thread) and the last one

    def current(self) -> Figures:
        """The workers' counters now (since the node started)."""
        return cumulative(read_snapshots(self.stats_dir))

    def flush(self) -> None:
        """Write what the counters grew by since the last write, and prune."""
        with self._writing:
            self._flush()

    def _flush(self) -> None:
        now = self.clock()
        counters = self.current()
        with self.writes.soft(WHAT):
            self.store.record(now - SNAPSHOT_LAG, grown(counters, self.written))
            self.written = counters
            self.store.prune(now)

    def window(self, span: Span, zones: Collection[int], counters: Figures | None = None) -> Window:
        """The history over `span` of `zones`, with what is not written yet in the
        bucket of now (`counters`: the workers' counters, if the caller has read them)."""
        window = self.store.window(span.start, span.end, span.step, zones)
        at = bucket(self.clock() - SNAPSHOT_LAG, span.step)
        if span.start <= at < span.end:
            pending = grown(self.current() if counters is None else counters, self.written)
            wanted = set(zones)
            window.count(at, {key: v for key, v in pending.items() if key[0] in wanted})
        return window

    async def run(self) -> None:
        """Write every `every` seconds, on the multiples of it (a minute's write just
        after the minute ends), until cancelled."""
        while True:
            await asyncio.sleep(self.every - self.clock() % self.every)
            try:
                await asyncio.to_thread(self.flush)
            except Exception:
                log.exception("stats history write failed")

    def close(self) -> None:
        """Write what is pending (the node is stopping)."""
        with self._writing:
            self._flush()
            self.store.close()
