"""The node's traffic history (docs/operations.md, Stats) on a real `pullzone serve` and a
real origin: it outlives a stop and start, and a kill -9 once written; `from`/`to` pick
the span and its resolution, and bad ones are a 400. Every wait polls a condition."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from origin import Origin, Reply
from server import Server, until

FLUSH_ENV = "PULLZONE_STATS_FLUSH_SECONDS"  # control/stats_recorder.py: tests only


@contextlib.contextmanager
def flushing_every(seconds: float) -> Iterator[None]:
    """Nodes started meanwhile write their history every `seconds` (the env they inherit)."""
    os.environ[FLUSH_ENV] = str(seconds)
    try:
        yield
    finally:
        os.environ.pop(FLUSH_ENV, None)


def stats(server: Server, zone_id: int, **params: Any) -> dict[str, Any]:
    response = server.api.get("/stats", params={"zone": zone_id, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


def traffic(server: Server, origin: Origin, path: str, alias: str) -> dict[str, Any]:
    """A zone with MISS, HIT, HIT on it; once the API shows the three in its history."""
    origin.route(path, Reply(200, [("Cache-Control", "max-age=600")], b"0123456789"))
    zone = server.create_zone(origin.url, alias=alias)
    answers = [server.get(zone["fqdn"], path).headers["x-cache"] for _ in range(3)]
    assert answers == ["MISS", "HIT", "HIT"]
    body = until(
        lambda: stats(server, zone["id"]),
        lambda b: b["history"]["zones"][0]["requests"] == 3,
    )
    assert body["history"]["zones"][0]["requests"] == 3, body["history"]
    return zone


def assert_history_holds_the_traffic(server: Server, zone_id: int) -> None:
    body = stats(server, zone_id)
    assert body["zones"][0]["requests"] == 0  # the counters started again
    history = body["history"]
    assert history["step"] == 60 and history["end"] - history["start"] in (3600, 3660)
    assert len(history["requests"]) == (history["end"] - history["start"]) // 60
    [row] = history["zones"]
    assert (row["requests"], row["hits"], row["origin_requests"]) == (3, 2, 1), row
    assert 3 * 10 < row["bytes"] < 3 * 1000
    assert sum(history["statuses"]["HIT"]) == 2 and sum(history["statuses"]["MISS"]) == 1
    assert sum(history["requests"]) == 3 and sum(history["bytes"]) == row["bytes"]
    # Two days: in hours, the same figures.
    hours = stats(server, zone_id, **{"from": str(int(time.time()) - 2 * 86400)})["history"]
    assert hours["step"] == 3600 and sum(hours["requests"]) == 3
    assert hours["zones"] == history["zones"]


@pytest.mark.timeout(120)
def test_history_outlives_a_stop_and_start(tmp_path: Path, origin: Origin, path: str) -> None:
    server = Server(tmp_path / "data", workers=1).start()
    try:
        zone = traffic(server, origin, path, "persist-stop")
        server.stop()  # SIGTERM: what the current minute counted is written
        server.start()
        assert_history_holds_the_traffic(server, zone["id"])
    finally:
        server.stop()


def written(data_dir: Path, zone_id: int) -> int:
    """Requests of the zone stats.db holds in its minutes."""
    try:
        with contextlib.closing(sqlite3.connect(data_dir / "stats.db")) as conn:
            row = conn.execute(
                "SELECT SUM(requests) FROM minutes WHERE zone_id = ? AND status != 'origin'",
                (zone_id,),
            ).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0] or 0)


@pytest.mark.timeout(120)
def test_history_once_written_outlives_a_kill(tmp_path: Path, origin: Origin, path: str) -> None:
    with flushing_every(0.5):
        server = Server(tmp_path / "data", workers=1, own_group=True).start()
    try:
        zone = traffic(server, origin, path, "persist-kill")
        assert until(lambda: written(server.data_dir, zone["id"]), lambda n: n == 3) == 3
        server.kill()  # no goodbye: only what was written counts
        server.start()
        assert_history_holds_the_traffic(server, zone["id"])
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "from must be unix seconds"),
        ({"to": "2026-13-01T00:00:00Z"}, "to must be unix seconds"),
        ({"from": "1800000000", "to": "1800000000"}, "from must be before to"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}, "at most 7 days"),
    ],
)
def test_a_bad_from_or_to_is_a_400(server: Server, params: dict[str, str], message: str) -> None:
    response = server.api.get("/stats", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"result", "message"} and body["result"] == "error"
    assert message in body["message"], body


def test_from_and_to_take_iso_8601_and_unix_seconds(server: Server) -> None:
    ago = int(time.time()) - 3 * 3600
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ago))
    by_iso = server.api.get("/stats", params={"from": iso, "to": str(ago + 600)})
    assert by_iso.status_code == 200, by_iso.text
    history = by_iso.json()["history"]
    assert history["step"] == 60 and history["start"] == ago // 60 * 60
    assert history["end"] == -(-(ago + 600) // 60) * 60
    assert len(history["requests"]) == (history["end"] - history["start"]) // 60
