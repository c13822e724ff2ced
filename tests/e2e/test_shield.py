"""The origin shield (docs/cluster.md, Origin shield) end to end: a real nats-server, an
API node, three edges and two `--role shield` nodes, each a `pullzone serve` process, in
front of a real origin on loopback. Every wait polls an observable condition.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats_servers import NatsServer
from origin import Origin, Reply, Seen
from server import Server
from test_cluster import PROBE, cluster_status, node, purged, running, until

from pullzone.edge.shields import ShieldNode, rank

Zone = dict[str, Any]
_aliases = itertools.count(1)


@dataclass
class Cluster:
    nats: NatsServer
    api: Server
    edges: list[Server]
    shields: list[Server]

    @property
    def nodes(self) -> list[Server]:
        return [self.api, *self.edges, *self.shields]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, origin: Origin) -> Iterator[Cluster]:
    origin.route(PROBE, Reply(headers=[("Cache-Control", "no-store")], body=b"probe"))
    tmp = tmp_path_factory.mktemp("shield")
    nats = NatsServer(tmp, "shield-nats").start()
    found = Cluster(
        nats,
        node(tmp, "api", "api", [nats.url]),
        [node(tmp, f"edge-{i}", "edge", [nats.url]) for i in (1, 2, 3)],
        [node(tmp, f"shield-{i}", "shield", [nats.url]) for i in (1, 2)],
    )
    try:
        with running(found.nodes):
            yield found
    finally:
        nats.stop()


def shielded_zone(c: Cluster, origin: Origin, *, shield: bool = True) -> Zone:
    """A zone whose misses go through the shields, once every edge knows both shields and
    sends the zone's misses to them (its probe, never stored, came through a shield)."""
    zone = c.api.create_zone(origin.url, alias=f"shielded{next(_aliases)}")
    if shield:
        r = c.api.api.post(f"/zones/http/pull/{zone['id']}/shield", json={"enabled": "Y"})
        assert r.status_code == 200, r.text
        shields_known(c)
    for edge in c.edges:

        def serves(edge: Server = edge) -> bool:
            r = edge.get(zone["fqdn"], PROBE)
            return r.status_code == 200 and ("shield=" in r.headers["x-cache"]) == shield

        until(serves, 10, f"zone {zone['id']} on {edge.edge_url}")
    return zone


def shields_known(c: Cluster) -> None:
    """Every edge has written both live shields for its workers."""
    for edge in c.edges:
        shields_file = edge.data_dir / "run" / "shields.json"

        def both(path: Path = shields_file) -> bool:
            return path.exists() and path.read_text().count('"node"') == 2

        until(both, 15, f"both shields known to {edge.edge_url}")


def served(origin: Origin, path: str, delay: float = 0.0, max_age: int = 3600) -> None:
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", f"max-age={max_age}"), ("ETag", '"v1"')],
            body=f"{path} v1".encode(),
            delay=delay,
        ),
    )


def answers(
    edges: list[Server], zone: Zone, paths: list[str], per_path: int
) -> list[httpx.Response]:
    """`per_path` GETs of each path, spread over the edges, all at once (100 threads)."""
    jobs = [(edges[i % len(edges)], p) for p in paths for i in range(per_path)]
    clients = {e.edge_url: httpx.Client(base_url=e.edge_url, timeout=30) for e in edges}
    try:
        with ThreadPoolExecutor(100) as pool:
            return list(
                pool.map(
                    lambda job: clients[job[0].edge_url].get(
                        job[1], headers={"Host": zone["fqdn"]}
                    ),
                    jobs,
                )
            )
    finally:
        for client in clients.values():
            client.close()


# -- what the shield is for ---------------------------------------------------------------


@pytest.mark.timeout(120)
def test_300_concurrent_cold_requests_over_three_edges_make_one_origin_request(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = shielded_zone(cluster, origin)
    served(origin, path, delay=1.0)
    got = answers(cluster.edges, zone, [path], 300)
    assert {(r.status_code, r.content) for r in got} == {(200, f"{path} v1".encode())}
    assert origin.count(path) == 1
    labels = Counter(r.headers["x-cache"] for r in got)
    # Each edge's fill went through the shield; on two of them the shield's answer was
    # the fill the first edge had started (a MISS there too, as it was in progress).
    assert set(labels) <= {"MISS, shield=MISS", "MISS, shield=HIT", "HIT"}, labels
    assert labels["MISS, shield=MISS"] >= 1, labels
    for edge in cluster.edges:
        assert edge.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    assert origin.count(path) == 1


def test_without_the_shield_every_edge_asks_the_origin(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = shielded_zone(cluster, origin, shield=False)
    served(origin, path)
    for edge in cluster.edges:
        r = edge.get(zone["fqdn"], path)
        assert (r.status_code, r.headers["x-cache"]) == (200, "MISS")
    assert origin.count(path) == 3


def test_an_edge_gets_what_another_edge_had_the_shield_store(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    """The second edge's miss is the shield's HIT; the origin sees the request as the
    first edge's client sent it, once, with this CDN in CDN-Loop once and none of the
    cluster's own fields; the edges honour CDN-Cache-Control, which the shield passes
    on (it is for caches) and the edges keep from browsers."""
    zone = shielded_zone(cluster, origin)
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=600")],
            body=b"for the CDN only",
        ),
    )
    first, second, third = cluster.edges
    r = first.get(zone["fqdn"], path, headers={"CDN-Loop": "other-cdn"})
    assert (r.status_code, r.headers["x-cache"]) == (200, "MISS, shield=MISS")
    assert "cdn-cache-control" not in r.headers and "x-pullzone-shield" not in r.headers
    assert r.headers["cache-control"] == "no-store"
    r = second.get(zone["fqdn"], path)
    assert (r.content, r.headers["x-cache"]) == (b"for the CDN only", "MISS, shield=HIT")
    assert second.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    assert third.get(zone["fqdn"], path).headers["x-cache"] == "MISS, shield=HIT"
    assert origin.count(path) == 1
    seen = origin.seen[path][0].headers
    assert seen["host"] == f"127.0.0.1:{origin.port}"
    assert seen["cdn-loop"] == "other-cdn, localhost"  # the edge domain, once
    assert seen["x-real-ip"] == "127.0.0.1"
    assert not [name for name in seen if name.startswith("x-pullzone")], seen


def test_a_shield_answers_no_visitor(cluster: Cluster, origin: Origin, path: str) -> None:
    zone = shielded_zone(cluster, origin)
    served(origin, path)
    for shield in cluster.shields:
        r = shield.get(zone["fqdn"], path)
        assert r.status_code == 403, r.text
        assert "origin shield" in r.text
        r = shield.get(zone["fqdn"], path, headers={"X-Pullzone-Internal": "a guess"})
        assert r.status_code == 403
    assert origin.count(path) == 0


def edge_reach(c: Cluster) -> dict[str, dict[str, float | None]] | None:
    """`pullzone cluster status --json`: each edge's shields and their connect times."""
    done = cluster_status([c.nats.url], "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["nodes"]
    reach = {row["node"]: row["shields"] for row in rows if row["role"] == "edge"}
    return reach if len(reach) == len(c.edges) else None


def test_cluster_status_shows_each_edges_shields_and_how_it_reaches_them(
    cluster: Cluster,
) -> None:
    def measured() -> dict[str, dict[str, float | None]] | None:
        reach = edge_reach(cluster)
        if reach is None or any(set(r or {}) != {"shield-1", "shield-2"} for r in reach.values()):
            return None
        return reach

    reach = until(measured, 15, "every edge reporting both shields")
    assert all(isinstance(ms, float) and 0 < ms < 500 for r in reach.values() for ms in r.values())
    done = cluster_status([cluster.nats.url])
    assert done.returncode == 0, done.stderr
    assert "shield-1" in done.stdout and " ms" in done.stdout


def test_cluster_status_shows_each_shields_load(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = shielded_zone(cluster, origin)
    served(origin, path)
    for edge in cluster.edges:  # one MISS on the shield, then two HITs
        assert edge.get(zone["fqdn"], path).status_code == 200

    def loads() -> dict[str, dict[str, Any]] | None:
        done = cluster_status([cluster.nats.url], "--json")
        rows = json.loads(done.stdout)["nodes"] if done.returncode == 0 else []
        found = {row["node"]: row["load"] for row in rows if row["role"] == "shield"}
        hit = any(load and (load["hit_ratio"] or 0) > 0 for load in found.values())
        return found if len(found) == 2 and hit else None

    found = until(loads, 15, "both shields' load, one with hits")
    assert sum(load["per_second"] for load in found.values()) > 0, found
    assert all(isinstance(load["connections"], int) for load in found.values())
    done = cluster_status([cluster.nats.url])
    assert done.returncode == 0, done.stderr
    assert "req/s" in done.stdout and "hits" in done.stdout, done.stdout


# -- purges -------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_no_edge_serves_an_object_purged_while_the_shield_filled_it(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = shielded_zone(cluster, origin)
    version = [1]
    release = threading.Event()

    def script(seen: Seen) -> Reply:
        v = version[0]
        return Reply(
            headers=[("Cache-Control", "max-age=3600")],
            body=f"{path} v{v}".encode(),
            hold=release if v == 1 else None,
        )

    origin.route(path, script)
    with ThreadPoolExecutor(3) as pool:
        # Every edge misses at once; the shield's origin request is held until the purge.
        inflight = [pool.submit(edge.get, zone["fqdn"], path) for edge in cluster.edges]
        until(lambda: origin.count(path) >= 1, 10, "the shield's origin request")
        version[0] = 2
        answer = purged(cluster.api, zone, [path])
        assert not answer.get("pending"), answer
        release.set()
        for future in inflight:
            assert future.result().status_code == 200
    v2 = f"{path} v2".encode()
    for edge in cluster.edges:
        for _ in range(2):
            r = edge.get(zone["fqdn"], path)
            assert r.content == v2, (edge.edge_url, r.headers)


# -- prefetch -----------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_prefetch_of_1000_objects_asks_the_origin_once_each_and_every_edge_hits(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = shielded_zone(cluster, origin)
    base = path.rsplit("/", 1)[0]
    paths = [f"{base}/{i}.txt" for i in range(1000)]
    for p in paths:
        served(origin, p)
    r = cluster.api.api.post(f"/zones/http/pull/{zone['id']}/prefetch", json={"files": paths})
    assert r.status_code == 200, r.text
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(httpx.Client(base_url=e.edge_url, timeout=30))
            for e in cluster.edges
        ]

        def all_hits(client: httpx.Client) -> bool:
            return all(
                client.get(p, headers={"Host": zone["fqdn"]}).headers["x-cache"] == "HIT"
                for p in paths
            )

        for client in clients:
            until(lambda client=client: all_hits(client), 60, "every object a HIT")
    assert sum(origin.count(p) for p in paths) == 1000


# -- a shield stalled ---------------------------------------------------------------------


def owned_by(node: str, zone: Zone, paths: list[str]) -> list[str]:
    """The paths whose misses the shield `node` is asked first (rendezvous hashing)."""
    nodes = [ShieldNode("shield-1", ""), ShieldNode("shield-2", "")]
    return [p for p in paths if rank(nodes, f"{zone['id']} {p}")[0].node == node]


def test_a_shield_waiting_for_a_slow_origin_is_waited_for(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    """The origin takes 3 s: the edge checks the shield meanwhile (OPTIONS *), the shield
    answers the check, and the edge keeps waiting: no failover, one origin request."""
    zone = shielded_zone(cluster, origin)
    served(origin, path, delay=3.0)
    r = cluster.edges[0].get(zone["fqdn"], path)
    assert r.status_code == 200 and r.headers["x-cache"] == "MISS, shield=MISS", r.headers
    assert origin.count(path) == 1


@pytest.mark.timeout(120)
def test_a_shield_that_stops_answering_is_skipped_within_two_seconds(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    """Shield-1's edge workers stopped (SIGSTOP): its kernel still accepts connections and
    its node still sends heartbeats, so only its silence tells. A miss it owns is answered
    through shield-2 once shield-1 fails the liveness check (edge/shields.py WATCH_EVERY,
    ALIVE_WITHIN), not after the origin timeout (60 s)."""
    zone = shielded_zone(cluster, origin)
    base = path.rsplit("/", 1)[0]
    paths = owned_by("shield-1", zone, [f"{base}/{i}.txt" for i in range(40)])[:3]
    for p in paths:
        served(origin, p)
    stopped = cluster.shields[0].worker_pids()
    assert stopped
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        edge = cluster.edges[0]
        for p in paths:
            started = time.monotonic()
            r = edge.get(zone["fqdn"], p)
            took = time.monotonic() - started
            assert r.status_code == 200 and r.content == f"{p} v1".encode()
            assert r.headers["x-cache"] == "MISS, shield=MISS", r.headers
            assert took < 3.0, took
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    # The worker that saw shield-1 stall skips it for DOWN_FOR; the next shield answered.
    assert all(origin.count(p) >= 1 for p in paths)


# -- a shield killed ----------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_shield_killed_mid_test_costs_no_request_and_one_origin_request_per_path(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    """Last in this module: it kills a shield. 30 objects asked on three edges at once,
    the origin slow; one shield is killed with -9 while its origin requests wait. Every
    request is answered; each object reached the origin at most twice (its shield's
    request, and the surviving shield's or an edge's own)."""
    zone = shielded_zone(cluster, origin)
    base = path.rsplit("/", 1)[0]
    paths = [f"{base}/{i}.txt" for i in range(30)]
    for p in paths:
        served(origin, p, delay=1.5)
    with ThreadPoolExecutor(1) as pool:
        got = pool.submit(answers, cluster.edges, zone, paths, 6)
        until(lambda: sum(origin.count(p) for p in paths) >= 10, 15, "origin requests")
        cluster.shields[0].kill()
        responses = got.result()
    for r in responses:
        assert r.status_code == 200, r.text
        assert r.content.endswith(b" v1") and r.content.startswith(r.url.path.encode())
    counts = {p: origin.count(p) for p in paths}
    assert max(counts.values()) <= 2, counts
    for edge in cluster.edges:
        for p in paths:
            assert edge.get(zone["fqdn"], p).headers["x-cache"] == "HIT"

    # The edges stop naming it among their shields once it is no longer heard from.
    def forgotten() -> bool:
        reach = edge_reach(cluster)
        return reach is not None and all(set(r or {}) == {"shield-2"} for r in reach.values())

    until(forgotten, 20, "the killed shield gone from every edge's shields")
