"""The node's traffic and cache figures, added up from what its edge workers and janitor
write under DATA_DIR/run/stats (edge.stats): for `GET /v2/stats` and `/metrics`.

Counters start at zero when `serve` starts. The cache's size by zone is read from the
cache index at most every CACHE_EVERY seconds (a scan of the index at a million objects).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pullzone.bus.signal import SeqSignal
from pullzone.config import Settings
from pullzone.edge.stats import MINUTES, ORIGIN_BUCKETS, read_snapshots
from pullzone.sqlite import connect

CACHE_EVERY = 5.0
JANITOR_FILE = "janitor.json"
SERVED_FROM_CACHE = ("HIT", "STALE")  # what the hit ratio counts as hits


@dataclass
class Origin:
    requests: int = 0
    failures: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(ORIGIN_BUCKETS) + 1))


@dataclass
class Totals:
    requests: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    bytes: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    minutes: dict[tuple[int, int, str], int] = field(default_factory=lambda: defaultdict(int))
    origin: dict[int, Origin] = field(default_factory=lambda: defaultdict(Origin))
    worker_applied: dict[int, int] = field(default_factory=dict)  # pid: sequence


@dataclass(frozen=True)
class ZoneCache:
    objects: int
    bytes: int


class NodeStats:
    def __init__(self, settings: Settings) -> None:
        self.directory = settings.stats_dir
        self.cache_db = settings.cache_db
        self.seq_path = settings.seq_path
        self.since = time.time()
        self._cache: dict[int, ZoneCache] = {}
        self._cache_at = float("-inf")
        self._conn: sqlite3.Connection | None = None
        self._signal: SeqSignal | None = None

    def totals(self) -> Totals:
        totals = Totals()
        for snap in read_snapshots(self.directory):
            totals.worker_applied[int(snap["pid"])] = int(snap["applied"])
            for zone, status, n, sent in snap["requests"]:
                totals.requests[(zone, status)] += n
                totals.bytes[zone] += sent
            for minute, zone, status, n in snap["minutes"]:
                totals.minutes[(minute, zone, status)] += n
            for zone, requests, failures, seconds, *buckets in snap["origin"]:
                origin = totals.origin[zone]
                origin.requests += int(requests)
                origin.failures += int(failures)
                origin.seconds += seconds
                origin.buckets = [a + int(b) for a, b in zip(origin.buckets, buckets, strict=True)]
        return totals

    def series(
        self, totals: Totals, zones: set[int] | None, now: float
    ) -> tuple[int, dict[str, list[int]]]:
        """(start of the first minute, requests per minute by cache status) for the last
        hour, of `zones` (None: all)."""
        first = int(now) // 60 - MINUTES + 1
        statuses: dict[str, list[int]] = {}
        for (minute, zone, status), n in totals.minutes.items():
            if minute >= first and (zones is None or zone in zones):
                statuses.setdefault(status, [0] * MINUTES)[minute - first] += n
        return first * 60, statuses

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self.cache_db.exists():
            self._conn = connect(self.cache_db, readonly=True)
        return self._conn

    def cache_by_zone(self) -> dict[int, ZoneCache]:
        now = time.monotonic()
        conn = self._connection()
        if conn is not None and now - self._cache_at >= CACHE_EVERY:
            rows = conn.execute(
                "SELECT zone_id, COUNT(*), COALESCE(SUM(size), 0) FROM objects GROUP BY zone_id"
            )
            self._cache = {int(z): ZoneCache(int(n), int(b)) for z, n, b in rows}
            self._cache_at = now
        return self._cache

    def cache_totals(self) -> ZoneCache | None:
        """The whole cache (None on a node without an edge)."""
        conn = self._connection()
        if conn is None:
            return None
        row = conn.execute("SELECT value FROM cache_meta WHERE name = 'total_size'").fetchone()
        objects = sum(zone.objects for zone in self.cache_by_zone().values())
        return ZoneCache(objects=objects, bytes=int(row[0] or 0) if row else 0)

    def invalidations(self) -> int:
        """Changes an edge worker made to stored objects for the whole node (the
        generation of bus/signal.py, counted in the index)."""
        conn = self._connection()
        if conn is None:
            return 0
        row = conn.execute("SELECT value FROM cache_meta WHERE name = 'invalidations'")
        value = row.fetchone()
        return int(value[0]) if value else 0

    def evictions(self) -> int:
        try:
            return int(json.loads((self.directory / JANITOR_FILE).read_text())["evicted"])
        except (OSError, ValueError, KeyError):
            return 0

    def node_seq(self) -> int | None:
        """The node's applied sequence, as its workers see it (None without an edge)."""
        if self._signal is None and self.seq_path.exists():
            self._signal = SeqSignal(self.seq_path)
        return None if self._signal is None else self._signal.value


def write_evictions(directory: Path, evicted: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (JANITOR_FILE + ".tmp")
    tmp.write_text(json.dumps({"evicted": evicted}))
    tmp.replace(directory / JANITOR_FILE)
