"""Text that is not valid Unicode is refused before it is committed, and an event that
cannot be applied anyway is quarantined: it never stops the events behind it, nor a
restart (docs/hardening.md, "Text and the event log")."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from origin import Origin, Reply
from server import Server

LONE_SURROGATE_BODIES = [
    ("a file", b'{"files": ["/a\\ud800"]}'),
    ("a tag", b'{"tags": ["t\\udfff"]}'),
    ("a full URL", b'{"files": ["http://HOST/a\\ud800b"]}'),
    ("a field name", b'{"files": ["/a"], "\\ud800": 1}'),
]


def purge_only_key(server: Server, zone_id: int) -> httpx.Client:
    r = server.api.post("/keys", json={"name": "bot", "zones": [zone_id], "purge_only": True})
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=server.api_url, headers={"X-API-Key": r.json()["secret"]})


def cached(server: Server, origin: Origin, zone: dict[str, Any], path: str) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=3600")], body=b"v1"))
    server.get(zone["fqdn"], path)
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"


def test_a_lone_surrogate_anywhere_in_a_purge_is_a_400_and_later_changes_apply(
    tmp_path: Path, origin: Origin
) -> None:
    server = Server(tmp_path / "data").start()
    try:
        mine = server.create_zone(origin.url, alias="mine")
        other = server.create_zone(origin.url, alias="other")
        cached(server, origin, other, "/bad-events/other")
        bot = purge_only_key(server, mine["id"])
        for what, body in LONE_SURROGATE_BODIES:
            body = body.replace(b"HOST", mine["fqdn"].encode())
            r = bot.post(
                f"/zones/http/pull/{mine['id']}/purge",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            assert r.status_code == 400, (what, r.text)
            assert r.json()["result"] == "error"
            assert "not valid Unicode" in r.json()["message"], what
        assert server.api.get(f"/zones/http/pull/{mine['id']}/purges").json()["purges"] == []
        # Every later change still applies: another zone's purge, a new zone.
        r = server.purge(other["id"], ["/bad-events/other"])
        assert r.status_code == 200, r.text
        assert server.get(other["fqdn"], "/bad-events/other").headers["x-cache"] == "EXPIRED"
        assert server.create_zone(origin.url, alias="third")["id"] > other["id"]
    finally:
        server.stop()
    restarted = Server(tmp_path / "data").start()
    restarted.stop()


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/zones/http/pull/new", b'{"name": "x\\ud800", "origin": "http://127.0.0.1:1"}'),
        ("/keys", b'{"name": "k\\udbff"}'),
    ],
)
def test_a_lone_surrogate_in_a_zone_or_key_is_a_400(
    server: Server, route: str, body: bytes
) -> None:
    before = server.api.get("/zones/http/pull").json()
    r = server.api.post(route, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "not valid Unicode" in r.json()["message"]
    assert server.api.get("/zones/http/pull").json() == before
    assert server.api.get("/stats").status_code == 200


def test_an_event_that_cannot_be_applied_is_quarantined_and_the_log_goes_on(
    tmp_path: Path, origin: Origin
) -> None:
    """As if an older release (or a bug) had stored an event no applier can apply: the
    node starts, sets it aside, applies what comes after, and says so."""
    server = Server(tmp_path / "data").start()
    zone = server.create_zone(origin.url, alias="quarantine")
    path = "/bad-events/after"
    cached(server, origin, zone, path)
    server.stop()
    control = sqlite3.connect(tmp_path / "data" / "control.db")
    with control:
        seq = control.execute("SELECT MAX(seq) FROM events").fetchone()[0] + 1
        plan = {"files": [{"path": "/a\ud800"}], "delete": False}
        control.execute(
            "INSERT INTO events (seq, at, kind, zone_id, payload) VALUES (?,?,?,?,?)",
            (seq, time.time(), "purge", zone["id"], json.dumps(plan)),
        )
        control.execute(
            "INSERT INTO purges (seq, zone_id, at, key_id, plan) VALUES (?,?,?,?,?)",
            (seq, zone["id"], time.time(), "admin", json.dumps(plan)),
        )
        control.execute("UPDATE log_meta SET value = ? WHERE name = 'position'", (str(seq),))
    control.close()

    server = Server(tmp_path / "data").start()
    try:
        r = server.purge(zone["id"], [path])
        assert r.status_code == 200, r.text
        assert server.get(zone["fqdn"], path).headers["x-cache"] == "EXPIRED"
        history = server.api.get(f"/zones/http/pull/{zone['id']}/purges").json()["purges"]
        assert [p["id"] for p in history][:2] == [r.json()["id"], seq]
        assert history[0]["quarantined"] is None
        assert "UnicodeEncodeError" in history[1]["quarantined"]
        metrics = httpx.get(
            server.api_url.removesuffix("/v2") + "/metrics", headers=server.api.headers
        ).text
        assert "pullzone_events_quarantined 1.0" in metrics
    finally:
        server.stop()
