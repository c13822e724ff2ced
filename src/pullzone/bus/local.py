"""The single-node event log: an append-only SQLite table beside the zones it describes."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from pullzone.bus.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL    NOT NULL,
    kind    TEXT    NOT NULL,
    zone_id INTEGER NOT NULL,
    payload TEXT    NOT NULL
);
"""


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def append(conn: sqlite3.Connection, kind: str, zone_id: int, payload: dict[str, Any]) -> Event:
    """Append one event; call inside the transaction that makes the change it records."""
    at = time.time()
    text = json.dumps(payload, separators=(",", ":"))
    cur = conn.execute(
        "INSERT INTO events (at, kind, zone_id, payload) VALUES (?, ?, ?, ?)",
        (at, kind, zone_id, text),
    )
    assert cur.lastrowid is not None
    return Event(seq=cur.lastrowid, kind=kind, zone_id=zone_id, payload=payload, at=at)


def read_since(conn: sqlite3.Connection, seq: int, upto: int | None = None) -> list[Event]:
    """Events after `seq` (and up to `upto` when given), oldest first."""
    if upto is None:
        rows = conn.execute("SELECT * FROM events WHERE seq > ? ORDER BY seq", (seq,))
    else:
        rows = conn.execute(
            "SELECT * FROM events WHERE seq > ? AND seq <= ? ORDER BY seq", (seq, upto)
        )
    return [
        Event(
            seq=row["seq"],
            kind=row["kind"],
            zone_id=row["zone_id"],
            payload=json.loads(row["payload"]),
            at=row["at"],
        )
        for row in rows
    ]


def last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
    return int(row[0])
