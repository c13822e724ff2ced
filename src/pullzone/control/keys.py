"""API keys: stored as SHA-256 hashes, never in clear; what each key may do.

A key is either the admin key (everything, including creating zones and managing keys
through `/v2/keys` and `/v2/account/api`) or a scoped key: it holds permissions
(pullzone.permissions: `read`, `create`, `update`, `delete`, `purge`; NULL for a key
`/v2/keys` made, whose `purge_only` says which) and may be limited to some zones
(`zones`, a JSON list of ids; NULL = every zone). Zone ids are never reused (each is the
sequence of the event that created the zone), so a key scoped to a deleted zone can never
reach a new one. Keys other than the admin key are made by events (KEY_CREATE,
KEY_UPDATE, KEY_REVOKE), so every API node of a cluster knows them.

5centscdn's key routes name keys by integer: a key's number is its id's 12 hex digits
(`key_00000000002a` is 42), the admin key's is 1; no generated key gets 0 or 1. That is a
function of the id alone, so every node and every older control.db agrees on it.

Keys are never logged. `ensure_admin_key` is the bootstrap of the README's Serve section: the
`PULLZONE_API_KEY` given to `serve` becomes (or stays) the admin key; without it, a first
start generates one and writes it to `DATA_DIR/admin.key` with mode 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pullzone import permissions as perms
from pullzone.bus.events import KeyRecord, UpdateKey
from pullzone.config import Settings
from pullzone.control.store import now
from pullzone.sqlite import transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    key_hash   TEXT NOT NULL UNIQUE,
    admin      INTEGER NOT NULL DEFAULT 0,
    zones      TEXT,               -- JSON list of zone ids; NULL = every zone
    purge_only INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT                -- JSON list (pullzone.permissions); NULL: by purge_only
);
"""
# Columns a control.db made before them lacks (ALTER TABLE … ADD COLUMN on open).
_ADDED_COLUMNS = {
    "description": "TEXT NOT NULL DEFAULT ''",
    "permissions": "TEXT",
}

ADMIN_KEY_ID = "admin"
ADMIN_KEY_NUMBER = 1
_ID = re.compile(r"key_([0-9a-f]{12})")
_ID_DIGITS = 12

# "write" is the older name of "update".
Action = Literal["read", "create", "update", "delete", "purge", "write"]


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    have = {str(row[1]) for row in conn.execute("PRAGMA table_info(api_keys)")}
    for column, declaration in _ADDED_COLUMNS.items():
        if column in have:
            continue
        try:
            conn.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {declaration}")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):  # another connection added it first
                raise


def number_of(key_id: str) -> int | None:
    """The key's integer id (`/v2/account/api/{id}`), or None for an id no generated key
    has."""
    if key_id == ADMIN_KEY_ID:
        return ADMIN_KEY_NUMBER
    match = _ID.fullmatch(key_id)
    return None if match is None else int(match[1], 16)


def id_of(number: int) -> str | None:
    """The key id whose number is `number`, or None when no key can have it."""
    if number == ADMIN_KEY_NUMBER:
        return ADMIN_KEY_ID
    if ADMIN_KEY_NUMBER < number < 16**_ID_DIGITS:
        return f"key_{number:0{_ID_DIGITS}x}"
    return None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id and what it may do (never the key itself)."""

    key_id: str
    admin: bool = False
    zones: frozenset[int] | None = None  # None: every zone
    purge_only: bool = False
    permissions: frozenset[perms.Permission] | None = None  # None: by purge_only

    def granted(self) -> frozenset[perms.Permission]:
        if self.admin:
            return frozenset(perms.PERMISSIONS)
        if self.permissions is not None:
            return self.permissions
        return frozenset(perms.of_legacy(self.purge_only))

    def may(self, action: Action, zone_id: int | None = None) -> bool:
        """May this key do `action` on zone `zone_id`?

        Admin: anything. Others as their permissions say (pullzone.permissions), within
        their zones; creating a zone needs `create` and a key for every zone (a key
        limited to some could not reach the zone it made).
        """
        if self.admin:
            return True
        wanted = "update" if action == "write" else action
        if wanted == "create":
            return self.zones is None and perms.allows(self.granted(), "create")
        if self.zones is not None and zone_id not in self.zones:
            return False
        return perms.allows(self.granted(), wanted)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key as `pullzone keys list` shows it."""

    id: str
    name: str
    admin: bool
    zones: list[int] | None
    purge_only: bool
    created_at: str
    revoked_at: str | None
    description: str = ""
    permissions: tuple[perms.Permission, ...] | None = None  # as stored; None: by purge_only

    @property
    def number(self) -> int | None:
        return number_of(self.id)

    def granted(self) -> tuple[perms.Permission, ...]:
        """The key's permissions, as answers list them."""
        if self.admin:
            return perms.FIVECENTS_PERMISSIONS
        if self.permissions is not None:
            return self.permissions
        return perms.of_legacy(self.purge_only)

    def principal(self) -> Principal:
        zones = None if self.zones is None else frozenset(self.zones)
        permissions = None if self.permissions is None else frozenset(self.permissions)
        return Principal(self.id, self.admin, zones, self.purge_only, permissions)

    def to_api(self) -> dict[str, Any]:
        """The key as `/v2/keys` shows it: never the key itself, nor its hash."""
        return {
            "id": self.id,
            "apikeyid": self.number,
            "name": self.name,
            "description": self.description,
            "admin": self.admin,
            "zones": self.zones,
            "purge_only": self.purge_only,
            "permission": list(self.granted()),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }

    def to_account_api(self, serviceid: int) -> dict[str, Any]:
        """The key as 5centscdn's `/v2/account/api` shows it, with the installation's
        `serviceid` (zones/model.py `service_id`) and without `hash`: the key is stored
        hashed, so it is in the answer that creates it only; `zones` and `created_at` are
        pullzone's."""
        return {
            "id": self.number,
            "serviceid": serviceid,
            "name": self.name,
            "description": self.description,
            "permission": list(self.granted()),
            "zones": self.zones,
            "created_at": self.created_at,
        }


def _info(row: sqlite3.Row) -> KeyInfo:
    zones = None if row["zones"] is None else [int(z) for z in json.loads(row["zones"])]
    stored = row["permissions"]
    permissions = None if stored is None else perms.normalized(json.loads(stored))
    purge_only = bool(row["purge_only"])
    return KeyInfo(
        id=row["id"],
        name=row["name"],
        admin=bool(row["admin"]),
        zones=zones,
        purge_only=purge_only if permissions is None else perms.purge_only(permissions),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        description=row["description"],
        permissions=permissions,
    )


def authenticate(conn: sqlite3.Connection, key: str) -> Principal | None:
    """The principal of a live key, or None for an unknown or revoked one."""
    wanted = hash_key(key)
    row = conn.execute(
        "SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (wanted,)
    ).fetchone()
    if row is None or not hmac.compare_digest(row["key_hash"], wanted):
        return None
    return _info(row).principal()


def new_key(
    name: str = "",
    *,
    zones: list[int] | None = None,
    purge_only: bool = False,
    description: str = "",
    permissions: tuple[perms.Permission, ...] | None = None,
) -> tuple[str, KeyRecord]:
    """A new key: (the key in clear, shown once; the record a KEY_CREATE event carries).
    `permissions` None: a `/v2/keys` key, whose `purge_only` says what it may do."""
    key = secrets.token_urlsafe(32)
    digits = secrets.token_hex(_ID_DIGITS // 2)
    while int(digits, 16) <= ADMIN_KEY_NUMBER:  # numbers 0 and 1 are no key's
        digits = secrets.token_hex(_ID_DIGITS // 2)
    if permissions is not None:
        permissions = perms.normalized(permissions)
        purge_only = perms.stored_purge_only(permissions)
    record = KeyRecord(
        id="key_" + digits,
        name=name,
        key_hash=hash_key(key),
        zones=None if zones is None else tuple(sorted(set(zones))),
        purge_only=purge_only,
        created_at=now(),
        description=description,
        permissions=permissions,
    )
    return key, record


def _permissions_column(permissions: tuple[perms.Permission, ...] | None) -> str | None:
    return None if permissions is None else json.dumps(list(permissions))


def store_key(conn: sqlite3.Connection, record: KeyRecord) -> None:
    """Store the key of a KEY_CREATE event (never an admin key)."""
    zones = record.zones
    conn.execute(
        "INSERT INTO api_keys (id, name, key_hash, admin, zones, purge_only, created_at,"
        " description, permissions) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.name,
            record.key_hash,
            None if zones is None else json.dumps(list(zones)),
            int(record.purge_only),
            record.created_at,
            record.description,
            _permissions_column(record.permissions),
        ),
    )


def update_key(conn: sqlite3.Connection, update: UpdateKey) -> bool:
    """Apply a KEY_UPDATE event; False when there is no such live key (the admin key is
    never one: it may do everything, always)."""
    if update.id == ADMIN_KEY_ID:
        return False
    permissions = perms.normalized(update.permissions)
    cur = conn.execute(
        "UPDATE api_keys SET name = ?, description = ?, permissions = ?, purge_only = ?"
        " WHERE id = ? AND revoked_at IS NULL AND admin = 0",
        (
            update.name,
            update.description,
            _permissions_column(permissions),
            int(perms.stored_purge_only(permissions)),
            update.id,
        ),
    )
    return cur.rowcount > 0


def get_key(conn: sqlite3.Connection, key_id: str) -> KeyInfo | None:
    """A stored key (live or revoked) by id, or None."""
    row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    return None if row is None else _info(row)


def list_keys(conn: sqlite3.Connection) -> list[KeyInfo]:
    return [_info(row) for row in conn.execute("SELECT * FROM api_keys ORDER BY created_at, id")]


def revoke_key(conn: sqlite3.Connection, key_id: str, at: str) -> bool:
    """Revoke a key (a KEY_REVOKE event); False when there is no such live key. The admin
    key is not revocable this way (restart `serve` with another PULLZONE_API_KEY)."""
    if key_id == ADMIN_KEY_ID:
        return False
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, key_id)
    )
    return cur.rowcount > 0


def _write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _set_admin_hash(conn: sqlite3.Connection, key_hash: str) -> None:
    # The same secret stored as another key would violate UNIQUE: the admin key wins.
    conn.execute("DELETE FROM api_keys WHERE key_hash = ? AND id != ?", (key_hash, ADMIN_KEY_ID))
    conn.execute(
        "INSERT INTO api_keys (id, name, key_hash, admin, zones, purge_only, created_at)"
        " VALUES (?, 'admin', ?, 1, NULL, 0, ?)"
        " ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash, admin = 1,"
        " zones = NULL, purge_only = 0, revoked_at = NULL",
        (ADMIN_KEY_ID, key_hash, now()),
    )


def ensure_admin_key(
    conn: sqlite3.Connection, settings: Settings
) -> tuple[str | None, Path | None]:
    """Make sure an admin key exists (README, Serve).

    - `settings.admin_key` given: it becomes (or stays) the admin key, replacing a previous
      one; an `admin.key` file holding the replaced key is removed, as it no longer works.
      Returns (None, None).
    - none given and an admin key exists: left alone. Returns (None, None).
    - none given and none exists: one is generated and written to `settings.admin_key_path`
      (mode 0600). Returns (the key, the path).
    """
    create_schema(conn)
    if settings.admin_key:
        wanted = hash_key(settings.admin_key)
        with transaction(conn):
            row = conn.execute(
                "SELECT key_hash FROM api_keys WHERE id = ?", (ADMIN_KEY_ID,)
            ).fetchone()
            previous = None if row is None else str(row["key_hash"])
            _set_admin_hash(conn, wanted)
        path = settings.admin_key_path
        if previous is not None and previous != wanted and path.exists():
            stale = path.read_text(encoding="utf-8", errors="replace").strip()
            if hmac.compare_digest(hash_key(stale), previous):
                path.unlink()
        return None, None

    row = conn.execute(
        "SELECT 1 FROM api_keys WHERE id = ? AND revoked_at IS NULL", (ADMIN_KEY_ID,)
    ).fetchone()
    if row is not None:
        return None, None
    key = secrets.token_urlsafe(32)
    # The file first: if storing the hash fails, the next start generates another key.
    _write_secret(settings.admin_key_path, key + "\n")
    with transaction(conn):
        _set_admin_hash(conn, hash_key(key))
    return key, settings.admin_key_path
