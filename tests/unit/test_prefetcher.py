"""The prefetcher (server/prefetcher.py) against a real HTTP server on loopback standing
in for the node's edge: what it asks, and its deadline."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import web

from pullzone.bus.events import Event, Prefetch
from pullzone.config import Settings
from pullzone.edge.internal import INTERNAL_HEADER
from pullzone.server import prefetcher
from pullzone.server.prefetcher import Fetched, Prefetcher, own_edge


def test_own_edge_is_reached_on_loopback_when_the_edge_listens_everywhere(tmp_path: Path) -> None:
    assert own_edge(Settings(tmp_path, edge_host="0.0.0.0", edge_port=80)) == "http://127.0.0.1:80"
    assert own_edge(Settings(tmp_path, edge_host="::", edge_port=81)) == "http://[::1]:81"
    assert own_edge(Settings(tmp_path, edge_host="10.1.2.3", edge_port=82)) == "http://10.1.2.3:82"


async def test_it_asks_the_edge_for_each_object_and_stops_at_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    seen: list[tuple[str, str | None, str | None, str | None]] = []
    release = asyncio.Event()  # the slow object's answer, held until the test is done

    async def handler(request: web.Request) -> web.Response:
        seen.append(
            (
                request.path_qs,
                request.headers.get("Host"),
                request.headers.get(INTERNAL_HEADER),
                request.headers.get("Accept-Encoding"),
            )
        )
        if request.path == "/slow":
            await release.wait()
        return web.Response(status=404 if request.path == "/missing" else 200, body=b"x")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    monkeypatch.setattr(prefetcher, "PREFETCH_DEADLINE", 0.5)
    try:
        settings = Settings(
            tmp_path, edge_host="127.0.0.1", edge_port=unused_tcp_port, internal_token="s3cret"
        )
        change = Prefetch("site.localhost", ("/a.css?v=1", "/missing", "/slow"))
        started = time.monotonic()
        fetched = await Prefetcher(settings).run(Event.of(5, 1, change, time.time()))
        assert fetched == Fetched(stored=1, failed=2)
        assert time.monotonic() - started < 5  # the slow one was given up at the deadline
        assert sorted(seen) == [
            (path, "site.localhost", "s3cret", prefetcher.ACCEPT_ENCODING)
            for path in ("/a.css?v=1", "/missing", "/slow")
        ]
        old = Event.of(6, 1, change, time.time() - 60)  # replayed by a node that was away
        assert await Prefetcher(settings).run(old) is None
        assert len(seen) == 3
    finally:
        release.set()
        await runner.cleanup()
