"""What a key may do (pullzone.permissions, control.keys.Principal), its integer id under
/v2/account/api, and control.db files from before keys had permissions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pullzone import permissions
from pullzone.bus.events import UpdateKey
from pullzone.control import keys
from pullzone.control.keys import Principal
from pullzone.sqlite import connect

ACTIONS = ("read", "create", "update", "delete", "purge")


def test_permissions_are_known_once_in_order_and_update_includes_purge() -> None:
    assert permissions.normalized(["delete", "read", "read"]) == ("read", "delete")
    assert permissions.normalized(["purge", "update"]) == ("update",)
    assert permissions.normalized(["purge"]) == ("purge",)
    with pytest.raises(ValueError, match="unknown permission 'admin'"):
        permissions.normalized(["read", "admin"])


def test_keys_of_v2_keys_keep_what_they_meant() -> None:
    assert permissions.of_legacy(purge_only=True) == ("read", "purge")
    assert permissions.of_legacy(purge_only=False) == ("read", "update", "delete")
    assert permissions.purge_only(["purge", "read"])
    assert not permissions.purge_only(["read"])


def test_an_older_release_reading_the_purge_only_column_never_gets_more() -> None:
    """Anything short of read+update+delete is stored purge-only for a release that reads
    nothing else; a full key stays a full key."""
    assert not permissions.stored_purge_only(["read", "update", "delete"])
    assert not permissions.stored_purge_only(["read", "create", "update", "delete"])
    for partial in (["read"], ["read", "update"], ["create"], ["update", "delete"]):
        assert permissions.stored_purge_only(partial), partial


def granted(principal: Principal, zone: int = 7) -> set[str]:
    return {a for a in ACTIONS if principal.may(a, zone)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("held", "allowed"),
    [
        (("read",), {"read"}),
        (("create",), {"create"}),
        (("update",), {"update", "purge"}),
        (("delete",), {"delete"}),
        (("purge",), {"purge"}),
        (("read", "update"), {"read", "update", "purge"}),
        (("read", "create", "update", "delete"), set(ACTIONS)),
    ],
)
def test_a_key_with_permissions_may_do_what_they_say(
    held: tuple[permissions.Permission, ...], allowed: set[str]
) -> None:
    assert granted(Principal("k", permissions=frozenset(held))) == allowed


def test_write_is_the_older_name_of_update() -> None:
    assert Principal("k", permissions=frozenset({"update"})).may("write", 7)
    assert not Principal("k", permissions=frozenset({"delete"})).may("write", 7)


def test_zones_narrow_permissions_and_a_key_for_some_zones_never_creates() -> None:
    every = frozenset(permissions.PERMISSIONS)
    limited = Principal("k", zones=frozenset({7}), permissions=every)
    assert granted(limited, 7) == set(ACTIONS) - {"create"}
    assert granted(limited, 8) == set()
    assert Principal("k", permissions=every).may("create")


def test_stored_permissions_win_over_purge_only() -> None:
    assert granted(Principal("k", purge_only=True, permissions=frozenset({"read"}))) == {"read"}


# --- integer ids -----------------------------------------------------------------------


def test_a_key_number_is_its_id_in_hex_and_the_admin_key_is_1() -> None:
    assert keys.number_of("admin") == 1
    assert keys.number_of("key_00000000002a") == 42
    assert keys.number_of("key_ffffffffffff") == 16**12 - 1
    for other in ("k", "key_2a", "key_00000000002A", "key_00000000002a0"):
        assert keys.number_of(other) is None, other
    assert keys.id_of(1) == "admin"
    assert keys.id_of(42) == "key_00000000002a"
    for nobody in (0, -1, 16**12, 2**63 - 1):
        assert keys.id_of(nobody) is None, nobody


def test_every_new_key_has_a_number_that_is_not_the_admin_keys() -> None:
    for _ in range(200):
        _, record = keys.new_key("n")
        number = keys.number_of(record.id)
        assert number is not None and number > 1 and keys.id_of(number) == record.id


# --- control.db ------------------------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    key_hash   TEXT NOT NULL UNIQUE,
    admin      INTEGER NOT NULL DEFAULT 0,
    zones      TEXT,
    purge_only INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
INSERT INTO api_keys VALUES ('key_00000000002a', 'old', 'h1', 0, '[3]', 1, 't', NULL);
INSERT INTO api_keys VALUES ('key_00000000002b', 'full', 'h2', 0, NULL, 0, 't', NULL);
"""


def test_a_control_db_from_before_permissions_opens_with_its_keys_unchanged(
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "control.db")
    conn.executescript(OLD_SCHEMA)
    conn.close()
    conn = connect(tmp_path / "control.db")
    keys.create_schema(conn)
    keys.create_schema(conn)  # twice: nothing more to add
    old = keys.get_key(conn, "key_00000000002a")
    assert old is not None
    assert (old.description, old.permissions, old.purge_only) == ("", None, True)
    assert old.granted() == ("read", "purge") and old.number == 42
    assert old.principal() == Principal("key_00000000002a", zones=frozenset({3}), purge_only=True)
    full = keys.get_key(conn, "key_00000000002b")
    assert full is not None and full.granted() == ("read", "update", "delete")


def test_an_update_sets_permissions_and_a_revoked_or_admin_key_is_not_updated(
    tmp_path: Path,
) -> None:
    conn = connect(tmp_path / "control.db")
    keys.create_schema(conn)
    _, record = keys.new_key("n", zones=[3], purge_only=True)
    keys.store_key(conn, record)
    assert keys.update_key(conn, UpdateKey(record.id, "renamed", "what for", ("read",)))
    info = keys.get_key(conn, record.id)
    assert info is not None
    assert (info.name, info.description, info.granted(), info.zones) == (
        "renamed",
        "what for",
        ("read",),
        [3],
    )
    assert not info.principal().may("purge", 3) and info.principal().may("read", 3)
    row = conn.execute("SELECT purge_only FROM api_keys WHERE id = ?", (record.id,)).fetchone()
    assert row[0] == 1  # an older release reads it as read+purge, never as a full key
    assert keys.revoke_key(conn, record.id, "t")
    assert not keys.update_key(conn, UpdateKey(record.id, "again", "", ("read",)))
    assert not keys.update_key(conn, UpdateKey("admin", "admin", "", ("read",)))
