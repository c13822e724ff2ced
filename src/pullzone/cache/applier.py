"""Applying the event log to a node's cache index, in order, exactly once.

Whole-zone purges (and zone deletion) only record the purge's sequence number in
`zone_state`: O(1) whatever the zone holds; lookups compare each object's `stored_seq`
with it, and the janitor reclaims hard-purged bytes in the background. Listed files,
prefixes, globs and tags touch exactly the rows they match, through the (zone, path) and
tag indexes: a glob reads only the zone's rows under its literal prefix. The applied
sequence is written in the same transaction as the changes, so a crash between two
events replays the second one, never half of it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pullzone.bus.events import (
    ACME_CHALLENGE_DELETE,
    ACME_CHALLENGE_PUT,
    CERT_DELETE,
    CERT_PUT,
    PREFETCH,
    PURGE,
    ZONE_DELETE,
    ZONE_PUT,
    Event,
)
from pullzone.cache.bodies import BodyStore
from pullzone.sqlite import transaction
from pullzone.zones.glob import literal_prefix, sqlite_pattern
from pullzone.zones.plan import PurgeFile, PurgePlan

# Events that change nothing the cache holds.
NOTHING_STORED_CHANGES = frozenset(
    {ZONE_PUT, CERT_PUT, CERT_DELETE, ACME_CHALLENGE_PUT, ACME_CHALLENGE_DELETE, PREFETCH}
)

_PREFIX_END = "\U0010ffff"


@dataclass(frozen=True, slots=True)
class Applied:
    seq: int
    matched: int  # objects a selective purge touched; -1 for whole-zone purges


def _file_rows(conn: sqlite3.Connection, zone_id: int, item: PurgeFile) -> sqlite3.Cursor:
    """The ids of the zone's objects one file matches. Each query is bounded by the zone's
    own rows: an equality or a range on objects_path (zone_id, path), a glob's range
    being its literal prefix, which GLOB then filters."""
    if item.prefix or item.glob is not None:
        start = literal_prefix(item.glob) if item.glob is not None else item.path
        sql = "SELECT id FROM objects WHERE zone_id = ? AND path >= ? AND path < ?"
        params: list[object] = [zone_id, start, start + _PREFIX_END]
        if item.glob is not None:
            sql += " AND path GLOB ?"
            params.append(sqlite_pattern(item.glob))
    else:
        sql = "SELECT id FROM objects WHERE zone_id = ? AND path = ?"
        params = [zone_id, item.path]
    if item.query is not None:
        sql += " AND query = ?"
        params.append(item.query)
    return conn.execute(sql, params)


def _matching_ids(conn: sqlite3.Connection, zone_id: int, plan: PurgePlan) -> set[str]:
    ids: set[str] = set()
    for item in plan.files:
        ids.update(row[0] for row in _file_rows(conn, zone_id, item))
    for tag in plan.tags:
        rows = conn.execute(
            "SELECT object_id FROM object_tags WHERE zone_id = ? AND tag = ?", (zone_id, tag)
        )
        ids.update(row[0] for row in rows)
    return ids


class Applier:
    def __init__(self, conn: sqlite3.Connection, bodies: BodyStore) -> None:
        self.conn = conn
        self.bodies = bodies

    def applied_seq(self) -> int:
        row = self.conn.execute("SELECT value FROM cache_meta WHERE name = 'applied_seq'")
        return int(row.fetchone()[0])

    def apply(self, event: Event) -> Applied:
        """Apply one event; an event at or below the applied sequence is a no-op."""
        deleted: list[str] = []
        matched = 0
        with transaction(self.conn):
            if event.seq <= self.applied_seq():
                return Applied(event.seq, 0)
            if event.kind == ZONE_DELETE:
                self._whole_zone(event, hard=True)
                matched = -1
            elif event.kind == PURGE:
                plan = PurgePlan.from_payload(event.payload)
                if plan.whole_zone:
                    self._whole_zone(event, hard=plan.delete)
                    matched = -1
                else:
                    ids = _matching_ids(self.conn, event.zone_id, plan)
                    matched = len(ids)
                    if plan.delete:
                        self.conn.executemany(
                            "DELETE FROM objects WHERE id = ?", [(i,) for i in ids]
                        )
                        deleted = list(ids)
                    else:
                        self.conn.executemany(
                            "UPDATE objects SET stale = 1 WHERE id = ?", [(i,) for i in ids]
                        )
                    self._zone_purged(event.zone_id, event.seq)
            elif event.kind not in NOTHING_STORED_CHANGES:
                raise ValueError(f"unknown event kind {event.kind!r}")
            self.conn.execute(
                "UPDATE cache_meta SET value = ? WHERE name = 'applied_seq'", (event.seq,)
            )
        # Bytes of a hard file purge are gone from disk before the purge is answered.
        self.bodies.remove(deleted)
        return Applied(event.seq, matched)

    def skip(self, seq: int) -> None:
        """Move the applied sequence past an event that cannot be applied (quarantined)."""
        self.conn.execute(
            "UPDATE cache_meta SET value = MAX(CAST(value AS INTEGER), ?)"
            " WHERE name = 'applied_seq'",
            (seq,),
        )

    def restart_at(self, seq: int, zones: set[int]) -> None:
        """The node's replica was replaced by a snapshot at `seq` (server/snapshotting.py):
        events before it that this cache never saw may have purged anything. Soft-purge
        every zone the snapshot has and hard-purge every other zone the cache knows (it
        was deleted), as purge events at `seq` would, then stand at `seq`."""
        with transaction(self.conn):
            rows = self.conn.execute(
                "SELECT zone_id FROM zone_state UNION SELECT DISTINCT zone_id FROM objects"
            )
            known = {int(row[0]) for row in rows}
            for zone_id in sorted(known | zones):
                column = "soft_all_seq" if zone_id in zones else "hard_all_seq"
                self._zone_purged(zone_id, seq, column)
            self.conn.execute("UPDATE cache_meta SET value = ? WHERE name = 'applied_seq'", (seq,))

    def _zone_purged(self, zone_id: int, seq: int, column: str | None = None) -> None:
        """Record a purge of the zone; `column` names the whole-zone kind, if it was one."""
        self.conn.execute("INSERT OR IGNORE INTO zone_state (zone_id) VALUES (?)", (zone_id,))
        if column is None:
            self.conn.execute(
                "UPDATE zone_state SET last_purge_seq = ? WHERE zone_id = ?", (seq, zone_id)
            )
        else:
            self.conn.execute(
                f"UPDATE zone_state SET last_purge_seq = ?, {column} = ? WHERE zone_id = ?",
                (seq, seq, zone_id),
            )

    def _whole_zone(self, event: Event, *, hard: bool) -> None:
        self._zone_purged(event.zone_id, event.seq, "hard_all_seq" if hard else "soft_all_seq")

    def reclaim(self, batch: int = 1000) -> int:
        """Delete up to `batch` hard-purged objects (rows, then bytes); returns how many."""
        rows = self.conn.execute(
            "SELECT o.id FROM zone_state z JOIN objects o"
            " ON o.zone_id = z.zone_id AND o.stored_seq < z.hard_all_seq LIMIT ?",
            (batch,),
        ).fetchall()
        ids = [row[0] for row in rows]
        if ids:
            with transaction(self.conn):
                self.conn.executemany("DELETE FROM objects WHERE id = ?", [(i,) for i in ids])
            self.bodies.remove(ids)
        return len(ids)
