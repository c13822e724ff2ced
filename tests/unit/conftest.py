"""Fixtures for the management API tests (tests/unit/test_api_*.py): the real app over
httpx's ASGI transport, with a real control.db in tmp_path and a recorder as `on_event`."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from ports import free_port

from pullzone.bus.events import Event
from pullzone.config import Settings
from pullzone.control.app import create_app
from pullzone.control.keys import KeyInfo, ensure_admin_key, get_key, new_key, store_key
from pullzone.control.log import LocalLog
from pullzone.sqlite import transaction

API_ADMIN_KEY = "unit-admin-key-0123456789"
API_EDGE_DOMAIN = "cdn.test"


@dataclass
class ApiHarness:
    """One API app, a client holding the admin key, and every event `on_event` got."""

    app: FastAPI
    settings: Settings
    client: httpx.AsyncClient
    events: list[Event] = field(default_factory=list)

    async def create(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "site", "origin": "http://origin.test", **fields}
        response = await self.client.post("/zones/http/pull/new", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json()["zone"])

    async def zones(self) -> list[dict[str, Any]]:
        response = await self.client.get("/zones/http/pull")
        assert response.status_code == 200, response.text
        return list(response.json()["zones"])

    def client_with(self, key: str | None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {} if key is None else {"X-API-Key": key}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(self.app, **kwargs),
            base_url="http://api.test/v2",
            headers=headers,
        )


def api_settings_for(data_dir: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {"admin_key": API_ADMIN_KEY, "edge_domain": API_EDGE_DOMAIN}
    fields.update(overrides)
    return Settings(data_dir=data_dir, **fields)


@pytest.fixture()
def api_settings(tmp_path: Path) -> Settings:
    return api_settings_for(tmp_path / "data")


@pytest.fixture()
async def api(api_settings: Settings) -> AsyncIterator[ApiHarness]:
    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    app = create_app(api_settings, LocalLog(api_settings, record))
    ensure_admin_key(app.state.control.conn, api_settings)
    harness = ApiHarness(app, api_settings, httpx.AsyncClient(), events)
    harness.client = harness.client_with(API_ADMIN_KEY)
    async with harness.client:
        yield harness
    app.state.control.conn.close()


LIVE_ADMIN_KEY = "live-admin-key-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PULLZONE_* setting of the machine running the tests leaks in; calls that find no
    API fail at once (retries have tests of their own)."""
    for name in list(os.environ):
        if name.startswith("PULLZONE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PULLZONE_API_RETRIES", "0")


@pytest.fixture()
def closed_url() -> str:
    """The URL of a loopback port that refuses connections."""
    return f"http://127.0.0.1:{free_port()}/v2"


@pytest.fixture()
def live_api(tmp_path: Path) -> Iterator[str]:
    """The API app (real control.db in tmp_path) served by uvicorn in a thread; its URL.
    The admin key is LIVE_ADMIN_KEY."""
    settings = Settings(data_dir=tmp_path / "data", admin_key=LIVE_ADMIN_KEY, api_burst=1000)

    async def ignore(event: Event) -> None:
        return None

    app = create_app(settings, LocalLog(settings, ignore))
    ensure_admin_key(app.state.control.conn, settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the API did not start"
    try:
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        app.state.control.conn.close()


def stored_key(
    conn: sqlite3.Connection,
    name: str = "",
    *,
    zones: list[int] | None = None,
    purge_only: bool = False,
) -> tuple[str, KeyInfo]:
    """A key stored as a KEY_CREATE event stores it: (the key in clear, what is stored)."""
    secret, record = new_key(name, zones=zones, purge_only=purge_only)
    with transaction(conn):
        store_key(conn, record)
    info = get_key(conn, record.id)
    assert info is not None
    return secret, info
