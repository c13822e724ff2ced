"""API keys (README, Serve): the admin key bootstrap, hashed storage, and what scoped keys
may do."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from conftest import stored_key

from pullzone.bus.events import Event
from pullzone.config import Settings
from pullzone.control.app import create_app
from pullzone.control.keys import (
    Principal,
    authenticate,
    ensure_admin_key,
    list_keys,
    revoke_key,
)
from pullzone.control.log import LocalLog
from pullzone.control.store import now
from pullzone.sqlite import connect


async def _ignore(event: Event) -> None:
    return None


async def status_with(settings: Settings, key: str) -> int:
    """Start the API on `settings` as `serve` does, and list zones with `key`."""
    app = create_app(settings, LocalLog(settings, _ignore))
    ensure_admin_key(connect(settings.control_db), settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://api.test/v2",
        headers={"X-API-Key": key},
    ) as client:
        status = (await client.get("/zones/http/pull")).status_code
        if status == 200:
            created = await client.post(
                "/zones/http/pull/new", json={"name": "n", "origin": "http://o.test"}
            )
            assert created.status_code == 200  # admin: may create zones
    app.state.control.conn.close()
    return status


def control_db_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("control.db*")))


async def test_a_first_start_without_key_writes_one_to_a_0600_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    key, path = ensure_admin_key(connect(settings.control_db), settings)
    assert path == settings.admin_key_path
    assert key is not None and len(key) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key
    assert await status_with(settings, key) == 200
    # later starts leave it alone
    assert ensure_admin_key(connect(settings.control_db), settings) == (None, None)
    assert path.read_text().strip() == key
    assert await status_with(settings, key) == 200


async def test_a_given_key_becomes_and_stays_the_admin_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    given = Settings(data_dir=data, admin_key="given-key-1")
    assert await status_with(given, "given-key-1") == 200
    assert not given.admin_key_path.exists()  # nothing written when the key is given
    assert await status_with(given, "given-key-1") == 200  # restart, same key
    assert await status_with(Settings(data_dir=data), "given-key-1") == 200  # restart, no key
    assert not given.admin_key_path.exists()
    replaced = Settings(data_dir=data, admin_key="given-key-2")
    assert await status_with(replaced, "given-key-2") == 200
    assert await status_with(replaced, "given-key-1") == 401


async def test_a_given_key_replaces_a_generated_one_and_its_stale_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    generated, path = ensure_admin_key(connect(data / "control.db"), Settings(data_dir=data))
    assert generated is not None and path is not None and path.exists()
    given = Settings(data_dir=data, admin_key="given-key")
    assert await status_with(given, "given-key") == 200
    assert await status_with(given, generated) == 401
    assert not path.exists()  # it held a key that no longer works


async def test_an_admin_key_file_holding_something_else_is_left_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin.key").write_text("operator notes\n")
    assert await status_with(Settings(data_dir=data, admin_key="k1"), "k1") == 200
    assert await status_with(Settings(data_dir=data, admin_key="k2"), "k2") == 200
    assert (data / "admin.key").read_text() == "operator notes\n"


async def test_keys_are_stored_hashed_never_in_clear(tmp_path: Path) -> None:
    data = tmp_path / "data"
    given = "clear-admin-key-that-must-not-be-stored"
    assert await status_with(Settings(data_dir=data, admin_key=given), given) == 200
    conn = connect(data / "control.db")
    scoped, _ = stored_key(conn, "ci", zones=[1], purge_only=True)
    generated_data = tmp_path / "generated"
    generated_data.mkdir()
    generated, _ = ensure_admin_key(
        connect(generated_data / "control.db"), Settings(data_dir=generated_data)
    )
    assert generated is not None
    stored = control_db_bytes(data)
    assert given.encode() not in stored
    assert scoped.encode() not in stored
    assert generated.encode() not in control_db_bytes(generated_data)
    hashes = [row[0] for row in conn.execute("SELECT key_hash FROM api_keys")]
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)
    assert authenticate(conn, scoped) == Principal(
        key_id=list_keys(conn)[-1].id, admin=False, zones=frozenset({1}), purge_only=True
    )


def test_authenticate_refuses_unknown_and_revoked_keys(tmp_path: Path) -> None:
    conn = connect(tmp_path / "control.db")
    ensure_admin_key(conn, Settings(data_dir=tmp_path, admin_key="admin"))
    key, info = stored_key(conn, "temp")
    assert authenticate(conn, "not-a-key") is None
    assert authenticate(conn, "admin") == Principal("admin", admin=True)
    assert authenticate(conn, key) is not None
    assert revoke_key(conn, info.id, now())
    assert not revoke_key(conn, info.id, now())
    assert authenticate(conn, key) is None
    assert not revoke_key(conn, "admin", now())  # replaced by restarting with another key only
    assert authenticate(conn, "admin") is not None


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [
        (Principal("a", admin=True), {"read", "write", "purge", "create"}),
        (Principal("k"), {"read", "write", "purge"}),
        (Principal("k", zones=frozenset({7})), {"read", "write", "purge"}),
        (Principal("k", purge_only=True), {"read", "purge"}),
        (Principal("k", zones=frozenset({7}), purge_only=True), {"read", "purge"}),
    ],
)
def test_what_each_kind_of_key_may_do_to_its_zone(principal: Principal, allowed: set[str]) -> None:
    actions = ("read", "write", "purge", "create")
    assert {a for a in actions if principal.may(a, 7)} == allowed  # type: ignore[arg-type]
    if principal.zones is not None:
        assert not any(principal.may(a, 8) for a in actions)  # type: ignore[arg-type]
