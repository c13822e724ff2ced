"""The cache index: one SQLite row per stored response, shared by every process of a node.

A row is written only after its body file is complete and in place, so a row never names
a partial body (bodies.py). The index also holds, per zone, the sequence numbers of the
newest purges, which make whole-zone purges O(1): an object stored from a fetch that began
before a whole-zone purge is stale (soft) or gone (hard) without being touched.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pullzone.cache.stored import ResponseHead, StoredObject
from pullzone.sqlite import connect, transaction

__all__ = ["CacheIndex", "StoredObject", "ZoneState", "create_schema"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id          TEXT    PRIMARY KEY,
    key_hash    TEXT    NOT NULL,
    zone_id     INTEGER NOT NULL,
    path        TEXT    NOT NULL,
    query       TEXT    NOT NULL,
    meta        TEXT    NOT NULL,
    body_offset INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    stored_seq  INTEGER NOT NULL,
    stale       INTEGER NOT NULL DEFAULT 0,
    last_access REAL    NOT NULL,
    lru_handicap REAL   NOT NULL DEFAULT 0,
    -- eviction order (cache/eviction.py): the lowest priority goes first
    hits        INTEGER NOT NULL DEFAULT 1,
    weight      REAL    NOT NULL DEFAULT 1,
    priority    REAL    NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS objects_key ON objects (key_hash);
CREATE INDEX IF NOT EXISTS objects_path ON objects (zone_id, path);
CREATE INDEX IF NOT EXISTS objects_age ON objects (zone_id, stored_seq);
CREATE TABLE IF NOT EXISTS object_tags (
    zone_id   INTEGER NOT NULL,
    tag       TEXT    NOT NULL,
    object_id TEXT    NOT NULL,
    PRIMARY KEY (zone_id, tag, object_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS zone_state (
    zone_id        INTEGER PRIMARY KEY,
    last_purge_seq INTEGER NOT NULL DEFAULT 0,
    soft_all_seq   INTEGER NOT NULL DEFAULT 0,
    hard_all_seq   INTEGER NOT NULL DEFAULT 0
);
-- Cache budget held by fills in progress (their bodies are on disk, not yet indexed).
CREATE TABLE IF NOT EXISTS fills (
    id    TEXT    PRIMARY KEY,
    pid   INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cache_meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO cache_meta (name, value)
    VALUES ('applied_seq', 0), ('total_size', 0), ('invalidations', 0), ('eviction_floor', 0);
CREATE TRIGGER IF NOT EXISTS objects_size_add AFTER INSERT ON objects BEGIN
    UPDATE cache_meta SET value = value + NEW.size WHERE name = 'total_size';
END;
CREATE TRIGGER IF NOT EXISTS objects_size_del AFTER DELETE ON objects BEGIN
    UPDATE cache_meta SET value = value - OLD.size WHERE name = 'total_size';
    DELETE FROM object_tags WHERE object_id = OLD.id AND zone_id = OLD.zone_id;
END;
"""


# Negative caching, bounded: a stored error response (status >= 400) has its eviction
# priority lowered by this much, below any content's, so that an origin's 404 storm
# evicts other errors, and content only once no error is left to evict.
ERROR_HANDICAP = 1e9


def lru_handicap(status: int) -> float:
    return ERROR_HANDICAP if status >= 400 else 0.0


def eviction_weight(size: int) -> float:
    """What each recorded access adds to an object's eviction priority: 1 / sqrt(its KiB),
    objects under 1 KiB counting as 1 KiB (cache/eviction.py says why)."""
    return 1.0 / math.sqrt(max(size, 1024) / 1024)


# An access: the floor (the priority last evicted) plus the object's accesses times its
# weight (cache/eviction.py), minus an error's handicap.
_ACCESSED = (
    "hits = hits + 1, priority = (SELECT value FROM cache_meta WHERE name = 'eviction_floor')"
    " + (hits + 1) * weight - lru_handicap"
)


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(objects)")}
    if "lru_handicap" not in columns:  # a cache.db made before it
        conn.execute("ALTER TABLE objects ADD COLUMN lru_handicap REAL NOT NULL DEFAULT 0")
    if "priority" not in columns:  # made when eviction was by last access alone
        conn.create_function("eviction_weight", 1, eviction_weight, deterministic=True)
        with transaction(conn):
            for column in ("hits INTEGER NOT NULL DEFAULT 1", "weight REAL NOT NULL DEFAULT 1"):
                conn.execute(f"ALTER TABLE objects ADD COLUMN {column}")
            conn.execute("ALTER TABLE objects ADD COLUMN priority REAL NOT NULL DEFAULT 0")
            conn.execute(
                "UPDATE objects SET weight = eviction_weight(size),"
                " priority = eviction_weight(size) - lru_handicap"
            )
            conn.execute("DROP INDEX IF EXISTS objects_lru")
    conn.execute("CREATE INDEX IF NOT EXISTS objects_priority ON objects (priority, last_access)")


class Fill(NamedTuple):
    """An object to index, the event its fill began at, and the cache budget its fill
    held (edge/budget.py), which becomes the row's size."""

    obj: StoredObject
    fill_seq: int
    held: str | None = None  # the fill's own row in `fills`: deleted
    pooled: tuple[str, int] | None = None  # (a worker's pool row, bytes taken from it)
    meta: str | None = None  # obj.head.to_json(), when the caller has it already
    # The key's rows as the fill read them under its claim (edge/fills.py), when it did:
    # no other process inserts a row for the key while the claim is held, so the rows
    # it may replace are among these (some perhaps deleted since: a purge, an eviction),
    # and the insert need not read them again.
    rows: Sequence[StoredObject] | None = None


@dataclass(frozen=True, slots=True)
class ZoneState:
    last_purge_seq: int = 0
    soft_all_seq: int = 0
    hard_all_seq: int = 0


# The columns _from_row reads, by position (a first touch reads one row per object).
_OBJECT = "id, key_hash, zone_id, path, query, meta, body_offset, size, stored_seq, stale"


def _from_row(row: sqlite3.Row) -> StoredObject:
    return StoredObject(
        row[0], row[1], row[2], row[3], row[4], ResponseHead.from_json(row[5]),
        row[6], row[7], row[8], bool(row[9]),
    )  # fmt: skip


class CacheIndex:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def reopened(self) -> CacheIndex:
        """The same index on a connection of its own, for another thread."""
        (_, _, path) = self.conn.execute("PRAGMA database_list").fetchone()
        return CacheIndex(connect(path))

    def variants(self, key_hash: str) -> list[StoredObject]:
        rows = self.conn.execute(f"SELECT {_OBJECT} FROM objects WHERE key_hash = ?", (key_hash,))
        return [_from_row(row) for row in rows]

    def get(self, object_id: str) -> StoredObject | None:
        rows = self.conn.execute(f"SELECT {_OBJECT} FROM objects WHERE id = ?", (object_id,))
        row = rows.fetchone()
        return None if row is None else _from_row(row)

    def zone_state(self, zone_id: int) -> ZoneState:
        row = self.conn.execute(
            "SELECT last_purge_seq, soft_all_seq, hard_all_seq FROM zone_state WHERE zone_id = ?",
            (zone_id,),
        ).fetchone()
        return ZoneState(*row) if row else ZoneState()

    def zone_states(self) -> dict[int, ZoneState]:
        rows = self.conn.execute(
            "SELECT zone_id, last_purge_seq, soft_all_seq, hard_all_seq FROM zone_state"
        )
        return {row[0]: ZoneState(row[1], row[2], row[3]) for row in rows}

    def insert(
        self, obj: StoredObject, fill_seq: int, fill_id: str | None = None
    ) -> list[StoredObject]:
        """Store `obj`, replacing the variant it supersedes; returns the replaced rows.
        The budget its fill `fill_id` held becomes the row's size in the same transaction.

        A purge of the zone applied after the fetch began (`fill_seq`) may have matched
        this object before it existed; it is then stored stale, never served as fresh.
        """
        return self.insert_many([Fill(obj, fill_seq, fill_id)])[0]

    def insert_many(self, fills: Sequence[Fill]) -> list[list[StoredObject]]:
        """`insert` each, in order, in one transaction (all or none); the replaced rows
        of each."""
        taken: dict[str, int] = {}
        for fill in fills:
            if fill.pooled is not None:
                taken[fill.pooled[0]] = taken.get(fill.pooled[0], 0) + fill.pooled[1]
        with transaction(self.conn):
            for pool, size in taken.items():  # one statement per pool, not per fill
                self.conn.execute("UPDATE fills SET bytes = bytes - ? WHERE id = ?", (size, pool))
            return [self._insert(fill) for fill in fills]

    def _insert(self, fill: Fill) -> list[StoredObject]:
        obj, fill_seq = fill.obj, fill.fill_seq
        if fill.held is not None:
            self.conn.execute("DELETE FROM fills WHERE id = ?", (fill.held,))
        rows = self.variants(obj.key_hash) if fill.rows is None else fill.rows
        replaced = [
            old
            for old in rows
            if old.head.vary_values == obj.head.vary_values
            or old.head.vary_names != obj.head.vary_names
        ]
        hits = 1
        if replaced:
            ids = [old.id for old in replaced]
            # The accesses of what it replaces count (a refetch of an object asked for
            # often is not a new object), as long as their rows are still there.
            marks = ",".join("?" * len(ids))
            (before,) = self.conn.execute(
                f"SELECT COALESCE(MAX(hits), 0) FROM objects WHERE id IN ({marks})", ids
            ).fetchone()
            hits += before
            self._delete_rows(ids)
        handicap = lru_handicap(obj.head.status)
        weight = eviction_weight(obj.size)
        # Stale when a purge of the zone was applied after the fetch began (`fill_seq`):
        # it may have matched this object before it existed.
        (stale,) = self.conn.execute(
            "INSERT INTO objects (id, key_hash, zone_id, path, query, meta, body_offset,"
            " size, stored_seq, stale, last_access, lru_handicap, hits, weight, priority)"
            " VALUES (?,?,?,?,?,?,?,?,?,"
            " ? OR COALESCE((SELECT last_purge_seq > ? FROM zone_state WHERE zone_id = ?), 0),"
            " ?,?,?,?,"
            " (SELECT value FROM cache_meta WHERE name = 'eviction_floor') + ?) RETURNING stale",
            (
                obj.id,
                obj.key_hash,
                obj.zone_id,
                obj.path,
                obj.query,
                obj.head.to_json() if fill.meta is None else fill.meta,
                obj.body_offset,
                obj.size,
                obj.stored_seq,
                int(obj.stale),
                fill_seq,
                obj.zone_id,
                time.time(),
                handicap,
                hits,
                weight,
                hits * weight - handicap,
            ),
        ).fetchone()
        obj.stale = bool(stale)
        if obj.head.tags:
            self.conn.executemany(
                "INSERT OR IGNORE INTO object_tags (zone_id, tag, object_id) VALUES (?,?,?)",
                [(obj.zone_id, tag, obj.id) for tag in obj.head.tags],
            )
        return replaced

    def refresh(self, obj: StoredObject, fill_seq: int) -> bool:
        """Write revalidated headers and times (RFC 9111 §4.3.4); False if the row is gone."""
        with transaction(self.conn):
            state = self.zone_state(obj.zone_id)
            obj.stale = state.last_purge_seq > fill_seq
            cur = self.conn.execute(
                "UPDATE objects SET meta = ?, stale = ?, stored_seq = ?, last_access = ?,"
                f" {_ACCESSED} WHERE id = ?",
                (obj.head.to_json(), int(obj.stale), obj.stored_seq, time.time(), obj.id),
            )
            return cur.rowcount == 1

    def delete(self, ids: Iterable[str]) -> None:
        with transaction(self.conn):
            self._delete_rows(ids)

    def _delete_rows(self, ids: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM objects WHERE id = ?", [(i,) for i in ids])

    def mark_stale(self, zone_id: int, paths: list[str]) -> int:
        """Make every stored variant of these paths stale (RFC 9111 §4.4); returns the
        invalidation generation to publish (bus/signal.py), 0 when nothing changed."""
        with transaction(self.conn):
            changed = sum(
                self.conn.execute(
                    "UPDATE objects SET stale = 1 WHERE zone_id = ? AND path = ? AND stale = 0",
                    (zone_id, path),
                ).rowcount
                for path in paths
            )
            return self._next_generation() if changed else 0

    def withdraw(self, object_id: str) -> int:
        """Delete a stored object no process may serve again (its body file is the
        caller's to remove); returns the invalidation generation to publish, 0 when the
        row was already gone."""
        with transaction(self.conn):
            gone = self.conn.execute("DELETE FROM objects WHERE id = ?", (object_id,)).rowcount
            return self._next_generation() if gone else 0

    def _next_generation(self) -> int:
        """A new invalidation generation, unique: counted in the caller's transaction."""
        row = self.conn.execute(
            "UPDATE cache_meta SET value = value + 1 WHERE name = 'invalidations' RETURNING value"
        ).fetchone()
        return int(row[0])

    def touch(self, accesses: dict[str, float], batch: int = 500) -> None:
        """Record accesses (their times, and their share of the eviction priority), in
        short transactions so no writer waits long."""
        items = [(at, oid) for oid, at in accesses.items()]
        for start in range(0, len(items), batch):
            with transaction(self.conn):
                self.conn.executemany(
                    f"UPDATE objects SET last_access = ?, {_ACCESSED} WHERE id = ?",
                    items[start : start + batch],
                )

    def total_size(self) -> int:
        row = self.conn.execute("SELECT value FROM cache_meta WHERE name = 'total_size'")
        return int(row.fetchone()[0])

    def used(self) -> int:
        """Bytes of stored objects and bytes held by fills in progress."""
        row = self.conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM fills").fetchone()
        return self.total_size() + int(row[0])

    def reserve(self, fill_id: str, pid: int, size: int, limit: int) -> bool:
        """Hold `size` bytes (in all) for fill `fill_id`, if the cache stays within `limit`."""
        with transaction(self.conn):
            row = self.conn.execute("SELECT bytes FROM fills WHERE id = ?", (fill_id,))
            held = row.fetchone()
            if self.used() - (held[0] if held else 0) + size > limit:
                return False
            self.conn.execute(
                "INSERT OR REPLACE INTO fills (id, pid, bytes) VALUES (?,?,?)",
                (fill_id, pid, size),
            )
        return True

    def grow(self, hold_id: str, pid: int, more: int, limit: int) -> bool:
        """Hold `more` bytes more for `hold_id` (a worker's pool), if the cache stays
        within `limit`."""
        with transaction(self.conn):
            if self.used() + more > limit:
                return False
            self.conn.execute(
                "INSERT INTO fills (id, pid, bytes) VALUES (?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET bytes = bytes + excluded.bytes",
                (hold_id, pid, more),
            )
        return True

    def release(self, fill_id: str) -> None:
        self.conn.execute("DELETE FROM fills WHERE id = ?", (fill_id,))

    def release_dead(self, alive: Callable[[int], bool]) -> int:
        """Drop what fills of processes no longer `alive` held (a worker killed mid-fill)."""
        pids = {row[0] for row in self.conn.execute("SELECT DISTINCT pid FROM fills")}
        dead = [(pid,) for pid in pids if not alive(pid)]
        self.conn.executemany("DELETE FROM fills WHERE pid = ?", dead)
        return len(dead)

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM objects").fetchone()[0])

    def applied_seq(self) -> int:
        row = self.conn.execute("SELECT value FROM cache_meta WHERE name = 'applied_seq'")
        return int(row.fetchone()[0])

    def eviction_order(self, limit: int) -> list[tuple[str, int, float]]:
        """(id, size, priority) of the first `limit` objects to evict (cache/eviction.py)."""
        rows = self.conn.execute(
            "SELECT id, size, priority FROM objects ORDER BY priority, last_access LIMIT ?",
            (limit,),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def evict(self, ids: list[str], floor: float) -> None:
        """Delete evicted objects; `floor`, the priority of the last of them, becomes the
        base of the priorities given from now on (it never goes down)."""
        with transaction(self.conn):
            self._delete_rows(ids)
            self.conn.execute(
                "UPDATE cache_meta SET value = MAX(value, ?) WHERE name = 'eviction_floor'",
                (floor,),
            )

    def ids(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT id FROM objects")}
