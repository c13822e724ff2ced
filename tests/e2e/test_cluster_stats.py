"""Cluster-wide `GET /v2/stats` (docs/cluster.md, Stats) end to end: a real `nats-server`, an
API node and two edges (`pullzone serve` processes on loopback). Traffic on each edge shows
in the API node's answer under that edge and in the sum; an edge killed is `unreachable`
within the answer's bound, and stays listed once silent for longer than the node
registry's 15 s, even on an API node started after it died; an edge stopped cleanly is
no longer listed. Every wait polls an observable condition with a deadline."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nats_servers import NatsServer
from origin import Origin, Reply
from server import Server
from test_cluster import PROBE, new_zone, node, running, until


@pytest.fixture(scope="module", autouse=True)
def probe_route(origin: Origin) -> None:
    origin.route(PROBE, Reply(headers=[("Cache-Control", "no-store")], body=b"probe"))


def stats(api: Server, zone_id: int, **params: Any) -> dict[str, Any]:
    response = api.api.get("/stats", params={"zone": zone_id, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


def hits_by_node(body: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Each node's HITs: (since it started, in the history). Hits, as `new_zone`'s probes
    count as requests too (never as hits)."""
    return {
        name: (figures["zones"][0]["hits"], figures["history"]["zones"][0]["hits"])
        for name, figures in body["nodes"].items()
    }


@pytest.fixture()
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path, "nats").start()
    yield server
    server.stop()


def silent_for(body: dict[str, Any], name: str) -> float:
    """How long ago the answer says `name` was last heard from (to within a second)."""
    at = datetime.datetime.strptime(body["last_heard"][name], "%Y-%m-%dT%H:%M:%S%z")
    return time.time() - at.timestamp()


@pytest.mark.timeout(240)
def test_the_api_node_answers_for_every_edge_and_their_sum(
    tmp_path: Path, nats: NatsServer, origin: Origin, path: str
) -> None:
    api = node(tmp_path, "api", "api", [nats.url])
    edges = {name: node(tmp_path, name, "edge", [nats.url]) for name in ("edge-1", "edge-2")}
    with running([api, *edges.values()]):
        zone = new_zone(api, origin, edges.values())
        origin.route(path, Reply(200, [("Cache-Control", "max-age=600")], b"0123456789"))
        for name, times in (("edge-1", 3), ("edge-2", 4)):  # a MISS, then HITs
            for _ in range(times):
                assert edges[name].get(zone["fqdn"], path).status_code == 200

        def counted() -> dict[str, Any] | None:
            b = stats(api, zone["id"])
            return b if hits_by_node(b) == {"edge-1": (2, 2), "edge-2": (3, 3)} else None

        body = until(counted, 15, "each edge's hits in the API node's answer")
        assert body["unreachable"] == []
        nodes = [body["nodes"][name] for name in edges]
        for figures in (body, body["total"]):  # the top-level figures are the sum
            [row] = figures["zones"]
            assert row["hits"] == 5 and row["origin_requests"] >= 2, row
            for field in ("requests", "bytes", "origin_requests", "cache_objects"):
                assert row[field] == sum(n["zones"][0][field] for n in nodes), field
            history = figures["history"]
            assert history["zones"][0]["hits"] == 5
            assert sum(history["statuses"]["HIT"]) == 5 == sum(figures["series"]["statuses"]["HIT"])
            assert sum(history["requests"]) == row["requests"]
        assert body["zones"][0]["cache_objects"] >= 2  # the object, in each edge's cache

        # An edge that no longer answers is listed, and the answer still comes in time.
        edges["edge-2"].kill()

        def without_edge_2() -> dict[str, Any] | None:
            started = time.monotonic()
            b = stats(api, zone["id"])
            assert time.monotonic() - started < 5, "the answer waited beyond its bound"
            return b if b["unreachable"] == ["edge-2"] else None

        body = until(without_edge_2, 15, "edge-2 listed as unreachable")
        assert list(body["nodes"]) == ["edge-1"]
        assert body["total"]["zones"][0]["hits"] == 2
        assert list(body["last_heard"]) == ["edge-2"] and silent_for(body, "edge-2") < 10

        # Silent for longer than the node registry keeps it (NODE_TTL, 15 s): still listed,
        # with when it was last heard from, not asked (no wait for it).
        took: list[float] = []

        def long_silent() -> dict[str, Any] | None:
            started = time.monotonic()
            b = stats(api, zone["id"])
            assert b["unreachable"] == ["edge-2"], b["unreachable"]
            assert list(b["nodes"]) == ["edge-1"]
            silent = silent_for(b, "edge-2")
            if silent > 16:
                took.append(time.monotonic() - started)
            return b if silent > 17 else None

        until(long_silent, 40, "edge-2 silent for more than 17 s, still listed")
        assert min(took) < 0.9, took  # not asked: no waiting for its answer

        # An API node started after edge-2 died never heard from it: the cluster's list of
        # its edges (the KNOWN bucket) still names it.
        api.stop()
        api.start()
        body = until(lambda: stats(api, zone["id"]), 15, "the restarted API node's answer")
        assert body["unreachable"] == ["edge-2"] and silent_for(body, "edge-2") > 17
        assert list(body["nodes"]) == ["edge-1"]

        # An edge stopped cleanly left on purpose: not listed once it is past NODE_TTL
        # (until then it is one that no longer answers).
        edges["edge-1"].stop()

        def only_edge_2() -> dict[str, Any] | None:
            b = stats(api, zone["id"])
            return b if b["unreachable"] == ["edge-2"] and b["nodes"] == {} else None

        body = until(only_edge_2, 40, "edge-1 gone from the answer")
        assert body["total"]["zones"][0]["hits"] == 0
