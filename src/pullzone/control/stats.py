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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pullzone.bus.signal import SeqSignal
from pullzone.cache import usage
from pullzone.cache.usage import Usage
from pullzone.config import Settings
from pullzone.edge.stats import ORIGIN_BUCKETS, Snapshot, WriteFailures, read_snapshots
from pullzone.sqlite import connect

CACHE_EVERY = 5.0
JANITOR_FILE = "janitor.json"
SERVED_FROM_CACHE = ("HIT", "STALE")  # what the hit ratio counts as hits


@dataclass(frozen=True, slots=True)
class JanitorReport:
    """The janitor's counters (server.janitor), in a file of their own."""

    evicted: int = 0  # objects evicted to keep the cache under its size
    write_failures: Mapping[str, int] = field(default_factory=dict)  # by kind

    def to_json(self) -> str:
        return json.dumps({"evicted": self.evicted, "write_failures": dict(self.write_failures)})

    @classmethod
    def from_json(cls, text: str) -> JanitorReport:
        report = json.loads(text)
        failures = report.get("write_failures", {})
        return cls(int(report.get("evicted", 0)), {k: int(n) for k, n in failures.items()})


@dataclass(frozen=True, slots=True)
class Load:
    """What a node's workers did lately: a shield's, in `pullzone cluster status`."""

    per_second: float  # responses a second, over the last minute or so
    hit_ratio: float | None  # of those, the share served from the cache (None: none)
    connections: int  # client connections open now


def recent_load(snapshots: list[Snapshot], now: float) -> Load:
    """The load in the workers' snapshots over the last complete minute and the current
    one (so far), so that it shows within seconds of the traffic."""
    current = int(now // 60)
    requests = hits = 0
    for snap in snapshots:
        for m in snap.minutes:
            if m.minute >= current - 1:
                requests += m.requests
                hits += m.requests if m.status in SERVED_FROM_CACHE else 0
    span = 60 + (now - current * 60)
    return Load(
        round(requests / span, 2),
        round(hits / requests, 3) if requests else None,
        sum(snap.connections for snap in snapshots),
    )


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
    faults: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # by kind
    connections: int = 0  # open client connections
    # Best-effort writes that failed, by kind, in every worker and the janitor.
    write_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fills_not_stored: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    compressions: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # by coding
    refreshes: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # by result
    slices: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # by event
    evicted: int = 0  # by fills in the workers (the janitor's: NodeStats.evictions)
    # Responses by (protocol, scheme): ("http/1.1", "http"), ("h2", "https"), …
    protocols: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))


class NodeStats:
    def __init__(self, settings: Settings) -> None:
        self.directory = settings.stats_dir
        self.cache_db = settings.cache_db
        self.seq_path = settings.seq_path
        self.since = time.time()
        self._cache: dict[int, Usage] = {}
        self._cache_at = float("-inf")
        self._conn: sqlite3.Connection | None = None
        self._signal: SeqSignal | None = None
        # Best-effort writes of this process's own (the stats history's), counted too.
        self.more_write_failures: list[WriteFailures] = []

    def totals(self) -> Totals:
        totals = Totals()
        for snap in read_snapshots(self.directory):
            totals.worker_applied[snap.pid] = snap.applied
            for kind, n in snap.faults.items():
                totals.faults[kind] += n
            totals.connections += snap.connections
            # Workers count every protocol but plain HTTP/1.1, which is the rest.
            plain = sum(count.requests for count in snap.requests)
            for label, n in snap.protocols.items():
                protocol, _, scheme = label.partition(" ")
                totals.protocols[(protocol, scheme)] += n
                plain -= n
            if plain:
                totals.protocols[("http/1.1", "http")] += plain
            for count in snap.requests:
                totals.requests[(count.zone_id, count.status)] += count.requests
                totals.bytes[count.zone_id] += count.bytes
            for minute in snap.minutes:
                totals.minutes[(minute.minute, minute.zone_id, minute.status)] += minute.requests
            for answers in snap.origin:
                origin = totals.origin[answers.zone_id]
                origin.requests += answers.requests
                origin.failures += answers.failures
                origin.seconds += answers.seconds
                origin.buckets = [
                    a + b for a, b in zip(origin.buckets, answers.buckets, strict=True)
                ]
            for what, n in snap.write_failures.items():
                totals.write_failures[what] += n
            for reason, n in snap.fills_not_stored.items():
                totals.fills_not_stored[reason] += n
            for rule, n in snap.refused.items():
                totals.refused[rule] += n
            for coding, n in snap.compressions.items():
                totals.compressions[coding] += n
            for result, n in snap.refreshes.items():
                totals.refreshes[result] += n
            for event, n in snap.slices.items():
                totals.slices[event] += n
            totals.evicted += snap.evicted
        for what, n in self._janitor().write_failures.items():
            totals.write_failures[what] += n
        for writes in self.more_write_failures:
            for what, n in writes.counts.items():
                totals.write_failures[what] += n
        return totals

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self.cache_db.exists():
            self._conn = connect(self.cache_db, readonly=True)
        return self._conn

    def cache_by_zone(self) -> dict[int, Usage]:
        now = time.monotonic()
        conn = self._connection()
        if conn is not None and now - self._cache_at >= CACHE_EVERY:
            self._cache = usage.by_zone(conn)
            self._cache_at = now
        return self._cache

    def cache_totals(self) -> Usage | None:
        """The whole cache (None on a node without an edge)."""
        conn = self._connection()
        if conn is None:
            return None
        objects = sum(zone.objects for zone in self.cache_by_zone().values())
        return Usage(objects=objects, bytes=usage.total_bytes(conn))

    def invalidations(self) -> int:
        """See cache.usage.invalidations; 0 on a node without an edge."""
        conn = self._connection()
        return 0 if conn is None else usage.invalidations(conn)

    def _janitor(self) -> JanitorReport:
        try:
            return JanitorReport.from_json((self.directory / JANITOR_FILE).read_text())
        except (OSError, ValueError, AttributeError, TypeError):
            return JanitorReport()

    def evictions(self) -> int:
        return self._janitor().evicted

    def node_seq(self) -> int | None:
        """The node's applied sequence, as its workers see it (None without an edge)."""
        if self._signal is None and self.seq_path.exists():
            self._signal = SeqSignal(self.seq_path)
        return None if self._signal is None else self._signal.value


def write_janitor(directory: Path, evicted: int, write_failures: dict[str, int]) -> None:
    """The janitor's counters, in a file of its own (replaced whole, as a worker's)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (JANITOR_FILE + ".tmp")
    try:
        tmp.write_text(JanitorReport(evicted, write_failures).to_json())
        tmp.replace(directory / JANITOR_FILE)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
