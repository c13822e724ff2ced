"""The node's traffic history, kept across restarts in DATA_DIR/stats.db (docs/operations.md,
Stats): requests and bytes by zone and X-Cache status, and origin requests by zone, in
one-minute buckets for the last 24 hours and one-hour buckets for the last 7 days.

What a bucket holds is what the workers' counters (edge/stats.py) grew by while it lasted;
`control/stats_recorder.py` writes it once a minute, adding to the minute's and the
hour's row in one transaction, so both resolutions always agree. Older rows are pruned
at each write.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pullzone.edge.stats import Snapshot
from pullzone.sqlite import connect, transaction

MINUTE = 60
HOUR = 3600
KEPT = {MINUTE: 24 * HOUR, HOUR: 7 * 24 * HOUR}  # how long each resolution is kept
TABLES = {MINUTE: "minutes", HOUR: "hours"}
# A pseudo-status (never an X-Cache value, which are upper case): the zone's origin
# requests, in `requests` (`bytes` 0).
ORIGIN = "origin"

Key = tuple[int, str]  # (zone id, X-Cache status or ORIGIN)
Figures = dict[Key, tuple[int, int]]  # key: (requests, bytes)

SCHEMA = "".join(
    f"""
CREATE TABLE IF NOT EXISTS {table} (
    at       INTEGER NOT NULL,  -- the bucket's start, unix seconds
    zone_id  INTEGER NOT NULL,
    status   TEXT    NOT NULL,
    requests INTEGER NOT NULL,
    bytes    INTEGER NOT NULL,
    PRIMARY KEY (at, zone_id, status)
) WITHOUT ROWID;
"""
    for table in TABLES.values()
)


def add(into: dict[Any, tuple[int, int]], more: Mapping[Any, tuple[int, int]]) -> None:
    """Add `more`'s (requests, bytes) to `into`'s, key by key."""
    for key, (n, sent) in more.items():
        had = into.get(key, (0, 0))
        into[key] = (had[0] + n, had[1] + sent)


def cumulative(snapshots: Iterable[Snapshot]) -> Figures:
    """What every worker counted since the node started (a dead worker's last snapshot
    stays, so this never goes back while the node runs)."""
    figures: Figures = {}
    for snap in snapshots:
        add(figures, {(c.zone_id, c.status): (c.requests, c.bytes) for c in snap.requests})
        add(figures, {(o.zone_id, ORIGIN): (o.requests, 0) for o in snap.origin})
    return figures


def grown(now: Mapping[Key, tuple[int, int]], before: Mapping[Key, tuple[int, int]]) -> Figures:
    """What the counters grew by from `before` to `now` (a counter never shrinks)."""
    delta: Figures = {}
    for key, (n, sent) in now.items():
        had = before.get(key, (0, 0))
        grew = (max(0, n - had[0]), max(0, sent - had[1]))
        if grew != (0, 0):
            delta[key] = grew
    return delta


def bucket(at: float, step: int) -> int:
    """The start of the bucket of `step` seconds that holds `at`."""
    return int(at) // step * step


@dataclass
class Window:
    """The figures of a span of buckets: per bucket and status (the zones asked for added
    up), and per zone and status (the buckets added up)."""

    series: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    zones: Figures = field(default_factory=dict)

    def add(self, other: Window) -> None:
        add(self.series, other.series)
        add(self.zones, other.zones)

    def count(self, at: int, figures: Mapping[Key, tuple[int, int]]) -> None:
        """Add `figures` (by zone and status) as the bucket that starts at `at`."""
        for (zone_id, status), value in figures.items():
            add(self.series, {(at, status): value})
            add(self.zones, {(zone_id, status): value})

    def to_json(self) -> dict[str, Any]:
        return {
            "series": [[at, s, n, b] for (at, s), (n, b) in self.series.items()],
            "zones": [[z, s, n, b] for (z, s), (n, b) in self.zones.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Window:
        return cls(
            {(int(at), str(s)): (int(n), int(b)) for at, s, n, b in data["series"]},
            {(int(z), str(s)): (int(n), int(b)) for z, s, n, b in data["zones"]},
        )


class HistoryStore:
    """stats.db: written by one recorder, read by any number of connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path)
            try:
                conn.executescript(SCHEMA)
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def record(self, at: float, figures: Mapping[Key, tuple[int, int]]) -> None:
        """Add `figures` to the minute and the hour that hold `at`."""
        if not figures:
            return
        conn = self._writer()
        with transaction(conn):
            for step, table in TABLES.items():
                conn.executemany(
                    f"INSERT INTO {table} (at, zone_id, status, requests, bytes)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (at, zone_id, status) DO UPDATE SET"
                    " requests = requests + excluded.requests, bytes = bytes + excluded.bytes",
                    [(bucket(at, step), z, s, n, b) for (z, s), (n, b) in figures.items()],
                )

    def prune(self, now: float) -> int:
        """Delete the buckets older than their resolution keeps; how many went."""
        conn = self._writer()
        deleted = 0
        for step, table in TABLES.items():
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE at < ?", (bucket(now, step) - KEPT[step],)
            )
            deleted += cursor.rowcount
        return deleted

    def window(self, start: int, end: int, step: int, zones: Collection[int]) -> Window:
        """The buckets of `step` seconds from `start` up to `end` (not included), of `zones`.
        Read on a connection of its own (callable from any thread)."""
        window = Window()
        if not self.path.exists() or not zones:
            return window
        where = " WHERE at >= ? AND at < ? AND zone_id IN (SELECT value FROM json_each(?))"
        args = (start, end, json.dumps(sorted(zones)))
        table = TABLES[step]
        with contextlib.closing(connect(self.path, readonly=True)) as conn:
            try:
                for into, by in ((window.series, "at"), (window.zones, "zone_id")):
                    for key, status, n, sent in conn.execute(
                        f"SELECT {by}, status, SUM(requests), SUM(bytes) FROM {table}{where}"
                        f" GROUP BY {by}, status",
                        args,
                    ):
                        into[(key, status)] = (n, sent)
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                return Window()  # nothing written yet
        return window

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
