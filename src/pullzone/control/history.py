"""Purge history (our extension): one row per answered purge, in control.db beside the
event that carries it."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from pullzone.bus import local
from pullzone.text import shown
from pullzone.zones.plan import PurgePlan

SCHEMA = """
CREATE TABLE IF NOT EXISTS purges (
    seq         INTEGER PRIMARY KEY,
    zone_id     INTEGER NOT NULL,
    at          REAL    NOT NULL,
    key_id      TEXT    NOT NULL,
    plan        TEXT    NOT NULL,
    matched     INTEGER,
    reclaim     INTEGER NOT NULL DEFAULT 0,
    reclaimed_at REAL
);
CREATE INDEX IF NOT EXISTS purges_zone ON purges (zone_id, seq);
CREATE INDEX IF NOT EXISTS purges_reclaiming ON purges (reclaimed_at) WHERE reclaim = 1;
"""

HISTORY_LIMIT = 100


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def record(
    conn: sqlite3.Connection, seq: int, zone_id: int, at: float, key_id: str, plan: PurgePlan
) -> None:
    """Call inside the transaction that stores the purge event."""
    reclaim = plan.whole_zone and plan.delete
    conn.execute(
        "INSERT INTO purges (seq, zone_id, at, key_id, plan, reclaim) VALUES (?,?,?,?,?,?)",
        (seq, zone_id, at, key_id, json.dumps(plan.to_payload(), separators=(",", ":")), reclaim),
    )


def set_matched(conn: sqlite3.Connection, seq: int, matched: int) -> None:
    conn.execute("UPDATE purges SET matched = ? WHERE seq = ?", (matched, seq))


def mark_reclaimed(conn: sqlite3.Connection, upto_seq: int) -> None:
    """Whole-zone hard purges up to `upto_seq` have had their bytes reclaimed."""
    conn.execute(
        "UPDATE purges SET reclaimed_at = ? WHERE reclaim = 1 AND reclaimed_at IS NULL"
        " AND seq <= ?",
        (time.time(), upto_seq),
    )


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def listing(
    conn: sqlite3.Connection, zone_id: int, limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
    """The zone's purges, newest first."""
    rows = conn.execute(
        "SELECT * FROM purges WHERE zone_id = ? ORDER BY seq DESC LIMIT ?", (zone_id, limit)
    ).fetchall()
    quarantined = local.quarantined(conn, [row["seq"] for row in rows])
    out = []
    for row in rows:
        plan = PurgePlan.from_payload(json.loads(row["plan"]))
        out.append(
            {
                "id": row["seq"],
                "created_at": _iso(row["at"]),
                "key": row["key_id"],
                "all": plan.whole_zone,
                "delete": plan.delete,
                "files": [shown(f.shown()) for f in plan.files],
                "tags": [shown(tag) for tag in plan.tags],
                "matched": row["matched"],
                "reclaimed_at": _iso(row["reclaimed_at"]),
                "quarantined": quarantined.get(row["seq"]),
            }
        )
    return out
