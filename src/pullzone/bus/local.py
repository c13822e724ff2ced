"""A node's copy of the event log: an append-only SQLite table beside the zones it built.

On a single node the API appends to it directly; in a cluster the stream's consumer
does, with the stream's sequence numbers. `log_meta.position` is the last sequence this
node has taken in, stored or not (a change refused when applied leaves no event behind).
"""

from __future__ import annotations

import json
import sqlite3
import time

from pullzone.bus.events import Event
from pullzone.text import shown

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL    NOT NULL,
    kind    TEXT    NOT NULL,
    zone_id INTEGER NOT NULL,
    payload TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS log_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantined (
    seq     INTEGER PRIMARY KEY,
    kind    TEXT    NOT NULL,
    zone_id INTEGER NOT NULL,
    at      REAL    NOT NULL,
    reason  TEXT    NOT NULL
);
"""

# What applying an event raises when the event itself is at fault (a field missing or of
# the wrong type, text SQLite cannot store): applying it again would fail again, so the
# event is quarantined and the log goes on. Anything else (sqlite3.OperationalError: a
# full disk, a locked database) may pass, and the event is retried.
UNAPPLICABLE: tuple[type[Exception], ...] = (
    KeyError,
    TypeError,
    ValueError,  # UnicodeEncodeError among them
    sqlite3.DataError,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)

LOCAL = "local"  # the log's source on a single node; a cluster's is "jetstream"


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def insert(conn: sqlite3.Connection, event: Event) -> None:
    """Store one event under its own sequence; call inside the transaction that makes the
    change it records."""
    conn.execute(
        "INSERT INTO events (seq, at, kind, zone_id, payload) VALUES (?, ?, ?, ?, ?)",
        (event.seq, event.at, event.kind, event.zone_id, event.payload_json()),
    )


def _row_event(row: sqlite3.Row) -> Event:
    return Event(
        seq=row["seq"],
        kind=row["kind"],
        zone_id=row["zone_id"],
        payload=json.loads(row["payload"]),
        at=row["at"],
    )


def read_since(conn: sqlite3.Connection, seq: int, upto: int | None = None) -> list[Event]:
    """Events after `seq` (and up to `upto` when given), oldest first."""
    if upto is None:
        rows = conn.execute("SELECT * FROM events WHERE seq > ? ORDER BY seq", (seq,))
    else:
        rows = conn.execute(
            "SELECT * FROM events WHERE seq > ? AND seq <= ? ORDER BY seq", (seq, upto)
        )
    return [_row_event(row) for row in rows]


def quarantine(conn: sqlite3.Connection, event: Event, error: Exception) -> None:
    """Record that `event` cannot be applied (and why); the caller moves past it."""
    reason = shown(f"{type(error).__name__}: {error}")
    conn.execute(
        "INSERT OR REPLACE INTO quarantined (seq, kind, zone_id, at, reason) VALUES (?,?,?,?,?)",
        (event.seq, event.kind, event.zone_id, time.time(), reason[:500]),
    )


def quarantined(conn: sqlite3.Connection, seqs: list[int]) -> dict[int, str]:
    """The reasons the events among `seqs` were quarantined, by sequence."""
    marks = ",".join("?" * len(seqs))
    rows = conn.execute(f"SELECT seq, reason FROM quarantined WHERE seq IN ({marks})", seqs)
    return {row[0]: row[1] for row in rows}


def quarantined_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM quarantined").fetchone()[0])


def get(conn: sqlite3.Connection, seq: int) -> Event | None:
    row = conn.execute("SELECT * FROM events WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else _row_event(row)


def last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
    return int(row[0])


def _meta(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM log_meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute(
        "INSERT INTO log_meta (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def position(conn: sqlite3.Connection) -> int:
    """The last sequence taken in (data from before log_meta: the last stored event)."""
    value = _meta(conn, "position")
    return max(int(value) if value is not None else 0, last_seq(conn))


def set_position(conn: sqlite3.Connection, seq: int) -> None:
    _set_meta(conn, "position", str(seq))


def bind_source(conn: sqlite3.Connection, source: str) -> str | None:
    """Tie this data directory to one log (`local`, or a cluster's stream); returns the
    other source it is already tied to, if so, and changes nothing then."""
    current = _meta(conn, "source")
    if current is None and position(conn) > 0:
        current = LOCAL  # data written before sources were recorded
    if current is not None and current != source:
        return current
    _set_meta(conn, "source", source)
    return None
