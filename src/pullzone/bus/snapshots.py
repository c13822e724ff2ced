"""Snapshots of a node's replica (docs/cluster.md, Retention and snapshots): everything the
stream's events built in control.db (zones, certificates, ACME challenges, API keys, the
purge history the API shows), tagged with the stream sequence it is consistent with.

A node that joins after the stream's retention dropped events it needs replaces its
replica with the newest snapshot and reads the stream from the snapshot's sequence on.
The encoding is gzip'd JSON (the CRC catches damaged bytes), checked field by field and
record by record when decoded: a snapshot that is not exactly what this release writes
raises SnapshotError, and the node falls back to an older one (server/late_join.py).
Pure logic on SQLite connections, no sockets: the JetStream side is bus/snapshot_store.py.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
import zlib
from dataclasses import dataclass
from typing import Any

from pullzone.bus import local
from pullzone.certs.model import Certificate
from pullzone.control.history import HISTORY_LIMIT
from pullzone.sqlite import transaction
from pullzone.zones.model import Zone

FORMAT = 1


class SnapshotError(Exception):
    """The bytes are not a snapshot this release can restore."""


@dataclass(frozen=True, slots=True)
class Table:
    """One replicated table: the rows a snapshot takes (`select`, a query returning
    `columns` in order) and the rows a restore replaces (`kept`: the others stay)."""

    name: str
    columns: tuple[str, ...]
    select: str
    kept: str = ""  # a WHERE clause of rows a restore leaves alone (node-local ones)


def _all(name: str, columns: tuple[str, ...], order: str) -> Table:
    return Table(name, columns, f"SELECT {', '.join(columns)} FROM {name} ORDER BY {order}")


_KEY_COLUMNS = (
    "id",
    "name",
    "key_hash",
    "admin",
    "zones",
    "purge_only",
    "created_at",
    "revoked_at",
    "description",
    "permissions",
)
_PURGE_COLUMNS = ("seq", "zone_id", "at", "key_id", "plan", "matched", "reclaim", "reclaimed_at")

TABLES: tuple[Table, ...] = (
    _all("zones", ("id", "alias", "record"), "id"),
    _all("certificates", ("id", "record"), "id"),
    _all("acme_challenges", ("token", "key_authorization"), "token"),
    # The admin key is each node's own (control/keys.py, ensure_admin_key): never shared.
    Table(
        "api_keys",
        _KEY_COLUMNS,
        f"SELECT {', '.join(_KEY_COLUMNS)} FROM api_keys WHERE admin = 0 ORDER BY id",
        kept="admin != 0",
    ),
    # What the API lists of each zone's purges (control/history.py): its newest ones.
    Table(
        "purges",
        _PURGE_COLUMNS,
        f"SELECT {', '.join(_PURGE_COLUMNS)} FROM (SELECT *, ROW_NUMBER() OVER"
        " (PARTITION BY zone_id ORDER BY seq DESC) AS n FROM purges)"
        f" WHERE n <= {HISTORY_LIMIT} ORDER BY seq",
    ),
)
_BY_NAME = {table.name: table for table in TABLES}
_SCALARS = (str, int, float, type(None))


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int  # the last stream sequence the replica had applied
    at: float  # when it was taken (unix time)
    node: str  # the node that took it
    rows: dict[str, list[list[Any]]]  # table name: rows, in TABLES' column order

    def zone_ids(self) -> set[int]:
        return {int(row[0]) for row in self.rows["zones"]}


def capture(conn: sqlite3.Connection, node: str) -> Snapshot:
    """The replica on `conn` as it is, in one read transaction (WAL: writers go on)."""
    conn.execute("BEGIN")
    try:
        seq = local.position(conn)
        rows = {t.name: [list(row) for row in conn.execute(t.select)] for t in TABLES}
    finally:
        conn.execute("COMMIT")
    return Snapshot(seq, time.time(), node, rows)


def restore(conn: sqlite3.Connection, snapshot: Snapshot) -> None:
    """Replace the replicated tables on `conn` with the snapshot's rows and set the log
    position to its sequence, in one transaction. The zones' host names are derived:
    rebuild them after (ZoneStore.create_schema)."""
    with transaction(conn):
        for table in TABLES:
            where = f" WHERE NOT ({table.kept})" if table.kept else ""
            conn.execute(f"DELETE FROM {table.name}{where}")
            marks = ", ".join("?" * len(table.columns))
            conn.executemany(
                f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})",
                snapshot.rows[table.name],
            )
        conn.execute("DELETE FROM zone_hosts")
        local.set_position(conn, snapshot.seq)


def encode(snapshot: Snapshot) -> bytes:
    document = {
        "format": FORMAT,
        "seq": snapshot.seq,
        "at": snapshot.at,
        "node": snapshot.node,
        "tables": {
            t.name: {"columns": list(t.columns), "rows": snapshot.rows[t.name]} for t in TABLES
        },
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def decode(data: bytes) -> Snapshot:
    """The snapshot in `data`; SnapshotError for anything else."""
    try:
        document = json.loads(gzip.decompress(data))
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # gzip, CRC, JSON, UTF-8
        raise SnapshotError(f"not a gzip'd JSON document: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError(f"not a snapshot of format {FORMAT}")
    seq, at, node, tables = (document.get(k) for k in ("seq", "at", "node", "tables"))
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SnapshotError(f"bad sequence {seq!r}")
    if not isinstance(at, int | float) or not isinstance(node, str):
        raise SnapshotError("bad time or node")
    if not isinstance(tables, dict) or set(tables) != set(_BY_NAME):
        raise SnapshotError(f"tables {sorted(tables) if isinstance(tables, dict) else tables}")
    rows = {name: _rows(_BY_NAME[name], tables[name]) for name in _BY_NAME}
    _check_records(rows)
    return Snapshot(seq, float(at), node, rows)


def _rows(table: Table, value: Any) -> list[list[Any]]:
    if not isinstance(value, dict) or value.get("columns") != list(table.columns):
        raise SnapshotError(f"{table.name}: columns are not {list(table.columns)}")
    rows = value.get("rows")
    if not isinstance(rows, list):
        raise SnapshotError(f"{table.name}: no rows")
    width = len(table.columns)
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise SnapshotError(f"{table.name}: a row is not {width} values")
        if not all(isinstance(v, _SCALARS) for v in row):
            raise SnapshotError(f"{table.name}: a value is not a scalar")
    return rows


def _check_records(rows: dict[str, list[list[Any]]]) -> None:
    """Every zone and certificate reads as the edge will read it."""
    try:
        for zone_id, _alias, record in rows["zones"]:
            if Zone.from_record(json.loads(record)).id != zone_id:
                raise SnapshotError(f"zone {zone_id}: its record has another id")
        for cert_id, record in rows["certificates"]:
            if Certificate.from_record(json.loads(record)).id != cert_id:
                raise SnapshotError(f"certificate {cert_id}: its record has another id")
    except SnapshotError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotError(f"a record does not read: {type(exc).__name__} {exc}") from None
