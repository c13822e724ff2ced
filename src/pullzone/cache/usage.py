"""What the cache holds, read from its index (cache.db) by a process that only reads it:
the API's `GET /v2/stats` and `/metrics`."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    objects: int
    bytes: int


def by_zone(conn: sqlite3.Connection) -> dict[int, Usage]:
    """Objects and their bytes for every zone with something cached (a scan of the index)."""
    rows = conn.execute(
        "SELECT zone_id, COUNT(*), COALESCE(SUM(size), 0) FROM objects GROUP BY zone_id"
    )
    return {int(zone): Usage(int(objects), int(size)) for zone, objects, size in rows}


def _meta(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT value FROM cache_meta WHERE name = ?", (name,)).fetchone()
    return int(row[0] or 0) if row else 0


def total_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of every stored object, as the index's triggers keep count (no scan)."""
    return _meta(conn, "total_size")


def invalidations(conn: sqlite3.Connection) -> int:
    """Changes an edge worker made to stored objects for the whole node (the generation of
    bus/signal.py, counted in the index)."""
    return _meta(conn, "invalidations")
