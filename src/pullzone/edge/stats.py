"""What one edge worker counts: requests and bytes by zone and cache status, requests per
minute for the last hour, and origin requests with their latency.

Counting is a dict update per request (a HIT must stay cheap). Once a second the worker
writes a snapshot to `DATA_DIR/run/stats/worker-PID.json` (a new file renamed over the
old: readers never see half of one); `node_stats` adds every worker's up. A worker that
died leaves its last snapshot, so the node's totals never go back while it runs.

Every write a worker or the janitor makes besides a cache fill is best-effort (LRU
times, snapshots, access log lines, the janitor's upkeep): on a full disk it fails soft
and is counted by kind (`WriteFailures`), never taking the process down.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

MINUTES = 60  # the per-minute series covers the last hour
# Upper bounds (seconds) of the origin latency histogram's buckets; +Inf is implied.
ORIGIN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# A snapshot's rows are named tuples, not dataclasses: a worker makes one per zone and
# status (and minute) every second, and JSON writes each as the array the file holds.
class RequestCount(NamedTuple):
    zone_id: int  # 0: the Host matched no zone
    status: str  # X-Cache
    requests: int
    bytes: int  # written to clients


class MinuteCount(NamedTuple):
    minute: int  # since the epoch
    zone_id: int
    status: str
    requests: int


@dataclass(frozen=True, slots=True)
class OriginCount:
    zone_id: int
    requests: int
    failures: int
    seconds: float  # to the response heads, in all
    buckets: tuple[int, ...]  # requests by latency: ORIGIN_BUCKETS, then +Inf


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one worker counted since it started, as its stats file holds it."""

    pid: int
    at: float
    applied: int  # the event sequence the worker had applied
    requests: tuple[RequestCount, ...]
    minutes: tuple[MinuteCount, ...]  # the last MINUTES minutes
    origin: tuple[OriginCount, ...]
    faults: Mapping[str, int]  # what the worker shed, by kind
    connections: int  # client connections open
    write_failures: Mapping[str, int]  # best-effort writes that failed, by kind
    fills_not_stored: Mapping[str, int]  # by reason (edge/bounds.py)
    evicted: int  # objects evicted by this worker's fills
    # Responses by "protocol scheme" ("http/1.1 http", "http/1.1 https", "h2 https").
    protocols: Mapping[str, int] = dataclasses.field(default_factory=dict)
    refused: Mapping[str, int] = dataclasses.field(default_factory=dict)  # by zone rule
    # Compressed variants made (edge/compress.py), by content coding.
    compressions: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # Background refreshes (edge/fills.py), by result.
    refreshes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # Slices of large objects (edge/slicer.py), by event.
    slices: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "at": self.at,
                "applied": self.applied,
                "requests": self.requests,
                "minutes": self.minutes,
                "origin": [
                    [o.zone_id, o.requests, o.failures, o.seconds, *o.buckets] for o in self.origin
                ],
                "faults": sorted(self.faults.items()),
                "connections": self.connections,
                "write_failures": dict(self.write_failures),
                "fills_not_stored": dict(self.fills_not_stored),
                "evicted": self.evicted,
                "protocols": dict(self.protocols),
                "refused": dict(self.refused),
                "compressions": dict(self.compressions),
                "refreshes": dict(self.refreshes),
                "slices": dict(self.slices),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        return cls(
            pid=int(data["pid"]),
            at=float(data["at"]),
            applied=int(data["applied"]),
            requests=tuple(RequestCount(*row) for row in data["requests"]),
            minutes=tuple(MinuteCount(*row) for row in data["minutes"]),
            origin=tuple(
                OriginCount(int(z), int(n), int(failed), seconds, tuple(map(int, buckets)))
                for z, n, failed, seconds, *buckets in data["origin"]
            ),
            faults={kind: int(n) for kind, n in data.get("faults", ())},
            connections=int(data.get("connections", 0)),
            write_failures=_counts(data.get("write_failures", {})),
            fills_not_stored=_counts(data.get("fills_not_stored", {})),
            evicted=int(data.get("evicted", 0)),
            protocols=_counts(data.get("protocols", {})),
            refused=_counts(data.get("refused", {})),
            compressions=_counts(data.get("compressions", {})),
            refreshes=_counts(data.get("refreshes", {})),
            slices=_counts(data.get("slices", {})),
        )


def _counts(value: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(n) for name, n in value.items()}


class WriteFailures:
    """Best-effort writes that failed, by kind (`pullzone_write_failures` in /metrics)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._failing: set[str] = set()  # kinds whose last write failed: logged once

    @contextmanager
    def soft(self, what: str) -> Iterator[None]:
        """Run a best-effort write: an OSError (ENOSPC, EDQUOT, EIO...) or an SQLite error
        ("database or disk is full") is counted and logged once per run of failures, and
        the caller carries on without it."""
        try:
            yield
        except (OSError, sqlite3.Error) as exc:
            self.counts[what] = self.counts.get(what, 0) + 1
            if what not in self._failing:
                self._failing.add(what)
                log.warning("%s write failed (counted until one succeeds): %s", what, exc)
        else:
            self._failing.discard(what)


class WorkerStats:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"worker-{os.getpid()}.json"
        self.requests: dict[tuple[int, str], list[int]] = {}  # (zone, status): [n, bytes]
        # Per minute: what `requests` grew by, attributed at each snapshot (once a second)
        # rather than per request, which keeps the clock off the hot path.
        self.minutes: dict[tuple[int, int, str], int] = {}  # (minute, zone, status): n
        self._counted: dict[tuple[int, str], int] = {}  # requests[...][0] at the last snapshot
        # zone: [requests, failures, seconds, bucket counts...]
        self.origin: dict[int, list[float]] = {}
        # What the worker shed, by kind (connection_shed, connection_refused,
        # header_timeout, out_of_files): pullzone_edge_faults in /metrics.
        self.faults: dict[str, int] = {}
        self.connections = 0  # client connections open at the last snapshot
        self.writes = WriteFailures()  # best-effort writes that failed
        self.fills_not_stored: dict[str, int] = {}  # reason (edge/bounds.py): n
        self.evicted = 0  # objects evicted by this worker's fills to make room
        self.protocols: dict[str, int] = {}  # responses by Exchange.label
        self.refused: dict[str, int] = {}  # requests a zone rule refused, by rule (edge/rules.py)
        self.compressions: dict[str, int] = {}  # variants made, by coding (edge/compress.py)
        self.refreshes: dict[str, int] = {}  # background refreshes, by result (edge/fills.py)
        self.slices: dict[str, int] = {}  # slices of large objects, by event (edge/slicer.py)

    def fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def not_stored(self, reason: str) -> None:
        """A fill that stopped storing its body (too big, no room, abandoned)."""
        self.fills_not_stored[reason] = self.fills_not_stored.get(reason, 0) + 1

    def compressed(self, coding: str) -> None:
        self.compressions[coding] = self.compressions.get(coding, 0) + 1

    def refreshed(self, result: str) -> None:
        self.refreshes[result] = self.refreshes.get(result, 0) + 1

    def sliced(self, event: str) -> None:
        self.slices[event] = self.slices.get(event, 0) + 1

    def count(self, zone_id: int, status: str, sent: int) -> None:
        counts = self.requests.get((zone_id, status))
        if counts is None:
            counts = self.requests[(zone_id, status)] = [0, 0]
        counts[0] += 1
        counts[1] += sent

    def origin_answer(self, zone_id: int, failed: bool, seconds: float) -> None:
        """One origin request: its response head came after `seconds`, or it failed."""
        row = self.origin.get(zone_id)
        if row is None:
            row = self.origin[zone_id] = [0.0] * (3 + len(ORIGIN_BUCKETS) + 1)
        row[0] += 1
        row[1] += failed
        row[2] += seconds
        row[3 + bisect_left(ORIGIN_BUCKETS, seconds)] += 1

    def snapshot(self, applied: int, now: float) -> Snapshot:
        minute = int(now) // 60
        for key, (n, _sent) in self.requests.items():
            grown = n - self._counted.get(key, 0)
            if grown:
                self._counted[key] = n
                bucket = (minute, *key)
                self.minutes[bucket] = self.minutes.get(bucket, 0) + grown
        oldest = minute - MINUTES + 1
        for old in [old for old in self.minutes if old[0] < oldest]:
            del self.minutes[old]
        return Snapshot(
            pid=os.getpid(),
            at=now,
            applied=applied,
            requests=tuple(RequestCount(z, s, n, b) for (z, s), (n, b) in self.requests.items()),
            minutes=tuple(MinuteCount(m, z, s, n) for (m, z, s), n in self.minutes.items()),
            origin=tuple(
                OriginCount(z, int(row[0]), int(row[1]), row[2], tuple(map(int, row[3:])))
                for z, row in self.origin.items()
            ),
            faults=dict(self.faults),
            connections=self.connections,
            write_failures=dict(self.writes.counts),
            fills_not_stored=dict(self.fills_not_stored),
            evicted=self.evicted,
            protocols=dict(self.protocols),
            refused=dict(self.refused),
            compressions=dict(self.compressions),
            refreshes=dict(self.refreshes),
            slices=dict(self.slices),
        )

    def write(self, applied: int) -> None:
        """Replace the snapshot file (OSError on a full disk: the old one stays whole)."""
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(self.snapshot(applied, time.time()).to_json())
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise


def read_snapshots(directory: Path) -> list[Snapshot]:
    """Every worker's last snapshot (a file being replaced is read whole or not at all)."""
    snapshots = []
    for path in sorted(directory.glob("worker-*.json")):
        try:
            snapshots.append(Snapshot.from_json(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return snapshots
