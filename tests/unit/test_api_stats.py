"""`GET /v2/stats` on the real app over httpx's ASGI transport, without sockets: the history
a recorder holds, `from`/`to` refused with a 400, and a cluster's answer (every edge's
figures, their sum and the edges that did not answer) from a stand-in for the exchange."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import API_ADMIN_KEY, ApiHarness

from pullzone.config import Settings
from pullzone.control.app import create_app
from pullzone.control.deps import GatherStats
from pullzone.control.keys import ensure_admin_key
from pullzone.control.log import LocalLog
from pullzone.control.routes.stats import GZIP_FROM, accepts_gzip
from pullzone.control.stats_history import ORIGIN, Window, bucket
from pullzone.control.stats_query import StatsQuery
from pullzone.control.stats_recorder import Recorder
from pullzone.control.stats_report import NodeReport
from pullzone.edge.stats import WorkerStats


async def harness(settings: Settings, **extra: Any) -> ApiHarness:
    async def ignore(event: object) -> None:
        return None

    app = create_app(settings, LocalLog(settings, ignore), **extra)
    ensure_admin_key(app.state.control.conn, settings)
    h = ApiHarness(app, settings, httpx.AsyncClient())
    h.client = h.client_with(API_ADMIN_KEY)
    return h


@pytest.fixture()
async def recorded(api_settings: Settings) -> AsyncIterator[tuple[ApiHarness, Recorder]]:
    recorder = Recorder(api_settings, every=60)
    h = await harness(api_settings, recorder=recorder)
    async with h.client:
        yield h, recorder
    h.app.state.control.conn.close()


async def test_the_answer_has_the_history_written_and_pending(
    recorded: tuple[ApiHarness, Recorder],
) -> None:
    api, recorder = recorded
    zone = await api.create(alias="hist")
    an_hour_ago = time.time() - 3600
    recorder.store.record(an_hour_ago + 120, {(zone["id"], "HIT"): (5, 50)})  # written
    stats = WorkerStats(api.settings.stats_dir)
    stats.count(zone["id"], "MISS", 7)
    stats.origin_answer(zone["id"], failed=False, seconds=0.01)
    stats.write(0)  # pending: counted since the last write

    response = await api.client.get("/stats", params={"from": str(int(an_hour_ago))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"result", "since", "zones", "series", "history"}  # a single node
    history = body["history"]
    assert history["step"] == 60 and history["start"] == bucket(an_hour_ago, 60)
    assert len(history["requests"]) == (history["end"] - history["start"]) // 60
    assert history["requests"][2] == 5 and history["statuses"]["HIT"][2] == 5
    assert history["requests"][-1] + history["requests"][-2] == 1  # now, give or take the lag
    assert history["zones"] == [
        {
            "id": zone["id"],
            "requests": 6,
            "hits": 5,
            "hit_ratio": 0.8333,
            "bytes": 57,
            "origin_requests": 1,
        }
    ]
    [row] = body["zones"]  # since the node started: the worker's counters only
    assert (row["requests"], row["hits"], row["origin_requests"]) == (1, 0, 1)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "noon"},
        {"to": ""},
        {"from": "1800000000", "to": "1799999999"},
        {"from": "1800000000", "to": "1900000000"},
    ],
)
async def test_a_bad_span_is_a_400_with_our_error(api: ApiHarness, params: dict[str, str]) -> None:
    response = await api.client.get("/stats", params=params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"result", "message"} and body["result"] == "error", body


def report(since: float, zone_id: int, hits: int, misses: int) -> NodeReport:
    figures = {(zone_id, "HIT"): (hits, hits * 10), (zone_id, "MISS"): (misses, misses * 10)}
    at = bucket(time.time(), 60)
    history = Window()
    history.count(at, {**figures, (zone_id, ORIGIN): (misses, 0)})
    return NodeReport(since, dict(figures), {(at, "HIT"): hits}, {zone_id: (1, 10)}, history)


async def test_in_a_cluster_the_answer_is_every_edges_and_their_sum(api_settings: Settings) -> None:
    asked: list[StatsQuery] = []
    zone_ids: list[int] = []

    async def gather(query: StatsQuery) -> tuple[dict[str, NodeReport], dict[str, float]]:
        asked.append(query)
        return {
            "edge-2": report(1_800_000_100, zone_ids[0], 3, 1),
            "edge-1": report(1_800_000_000, zone_ids[0], 1, 1),
        }, {"edge-3": 1_800_000_061.5}

    exchange: GatherStats = gather
    api = await harness(api_settings, cluster_stats=exchange)
    async with api.client:
        zone = await api.create(alias="clustered")
        zone_ids.append(zone["id"])
        response = await api.client.get("/stats", params={"zone": zone["id"]})
    api.app.state.control.conn.close()
    assert response.status_code == 200, response.text
    body = response.json()
    assert [q.zones for q in asked] == [(zone["id"],)]
    assert body["unreachable"] == ["edge-3"] and list(body["nodes"]) == ["edge-1", "edge-2"]
    assert body["last_heard"] == {"edge-3": "2027-01-15T08:01:01Z"}
    assert body["since"] == "2027-01-15T08:00:00Z"  # the earliest node's
    for figures, want in (
        (body, (6, 4)),
        (body["total"], (6, 4)),
        (body["nodes"]["edge-2"], (4, 3)),
    ):
        [row] = figures["zones"]
        assert (row["requests"], row["hits"]) == want, figures
        assert figures["history"]["zones"][0]["requests"] == want[0]
        assert sum(figures["history"]["statuses"]["HIT"]) == want[1]
        assert sum(figures["series"]["statuses"]["HIT"]) == want[1]
    assert body["zones"][0]["cache_objects"] == 2
    assert body["history"]["zones"][0]["origin_requests"] == 2


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("*", True),
        ("*;q=0, gzip", True),
        ("gzip;q=0, *", False),
        ("gzip;q=0.0", False),
        ("br, identity", False),
        ("", False),
    ],
)
def test_accept_encoding_allows_gzip(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


async def test_a_big_answer_is_gzipd_for_a_client_that_accepts_it(api_settings: Settings) -> None:
    zone_ids: list[int] = []

    async def gather(query: StatsQuery) -> tuple[dict[str, NodeReport], dict[str, float]]:
        return {f"edge-{i}": report(1_800_000_000, zone_ids[0], i, 1) for i in (1, 2)}, {}

    api = await harness(api_settings, cluster_stats=gather)
    async with api.client:
        for i in range(30):
            zone_ids.append((await api.create(alias=f"big-{i}"))["id"])
        gzipped = await api.client.get("/stats", headers={"Accept-Encoding": "gzip"})
        plain = await api.client.get("/stats", headers={"Accept-Encoding": "identity"})
        small = await api.client.get("/stats", params={"zone": zone_ids[0]})
    api.app.state.control.conn.close()
    assert gzipped.status_code == plain.status_code == small.status_code == 200
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.num_bytes_downloaded * 5 < len(plain.content) >= GZIP_FROM
    assert "content-encoding" not in plain.headers and "content-encoding" not in small.headers
    assert gzipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
    body = plain.json()
    assert len(body["zones"]) == 30 and body["zones"][0]["hits"] == 3
    for answer in (gzipped, plain):
        assert answer.headers["content-type"] == "application/json"
        assert {**answer.json(), "series": None} == {**body, "series": None}  # series: the clock
