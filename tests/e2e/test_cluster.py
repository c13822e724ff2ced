"""Cluster mode (README, Cluster) end to end: real `nats-server` and `pullzone serve` processes on
loopback, nodes with their own data directories sharing zones and purges through JetStream.

Every wait polls an observable condition with a deadline; no sleep stands in for one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from nats_servers import NatsCluster, NatsServer
from origin import Origin, Reply, Seen
from server import API_KEY, Server

Zone = dict[str, Any]
T = TypeVar("T")

PROBE = "/_cluster_probe"  # answered by the origin on every zone, never stored
NOT_HIT_SOFT = ("REVALIDATED", "MISS")  # a soft-purged, unchanged object's first answer
STREAM = "PULLZONE_EVENTS"
_aliases = itertools.count(1)


# -- helpers ------------------------------------------------------------------------------


def until(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `condition` until it returns something other than None/False; fail after
    `timeout` seconds saying `what` was awaited."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = condition()
        except (httpx.TransportError, OSError) as exc:
            last = exc
        else:
            if value is not None and value is not False:
                return value
            last = value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s (last: {last!r})")
        time.sleep(0.05)


def node(tmp: Path, name: str, role: str, urls: list[str], *extra: str) -> Server:
    """A cluster node (not started) with its own data directory, in its own process group."""
    return Server(
        tmp / name / "data",
        "--cluster",
        ",".join(urls),
        "--node-id",
        name,
        *extra,
        workers=1,
        role=role,
        own_group=True,
    )


@contextlib.contextmanager
def running(nodes: Iterable[Server]) -> Iterator[None]:
    """Start the nodes together (they boot in parallel), stop them all on the way out,
    whatever happened."""
    nodes = list(nodes)
    try:
        for n in nodes:
            n.launch()
        for n in nodes:
            n.wait_ready(60)
        yield
    finally:
        for n in nodes:
            with contextlib.suppress(Exception):
                n.stop()
            with contextlib.suppress(Exception):
                n.kill()


def versioned(origin: Origin, path: str, max_age: int = 3600) -> list[int]:
    """The origin serves `path vN` with ETag "vN", answering 304 to a matching
    If-None-Match; bump the list's value to change the version."""
    version = [1]

    def script(seen: Seen) -> Reply:
        etag = f'"v{version[0]}"'
        headers = [("Cache-Control", f"max-age={max_age}"), ("ETag", etag)]
        if seen.headers.get("if-none-match") == etag:
            return Reply(304, headers=headers)
        return Reply(headers=headers, body=f"{path} v{version[0]}".encode())

    origin.route(path, script)
    return version


def new_zone(api: Server, origin: Origin, edges: Iterable[Server]) -> Zone:
    """A zone created through `api`, once every edge serves its host."""
    zone = api.create_zone(origin.url, alias=f"cluster{next(_aliases)}")
    assert isinstance(zone["id"], int)
    for edge in edges:

        def serves(edge: Server = edge) -> bool:
            return edge.get(zone["fqdn"], PROBE).status_code == 200

        until(serves, 5, f"zone {zone['id']} on the edge at {edge.edge_url}")
    return zone


def cache(edge: Server, zone: Zone, path: str) -> str:
    """The X-Cache of a GET (after checking the body is the origin's)."""
    r = edge.get(zone["fqdn"], path)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.content.startswith(path.encode()), r.content
    return str(r.headers["x-cache"])


def warm(edges: Iterable[Server], zone: Zone, paths: Iterable[str]) -> None:
    paths = list(paths)
    for edge in edges:
        for path in paths:
            assert cache(edge, zone, path) == "MISS", (edge.edge_url, path)
            assert cache(edge, zone, path) == "HIT", (edge.edge_url, path)


def purged(
    api: Server, zone: Zone, files: list[str] | None = None, *, delete: bool = False
) -> dict[str, Any]:
    """A purge that must succeed; its answer."""
    r = api.purge(zone["id"], files, delete=delete)
    assert r.status_code == 200, r.text
    answer = dict(r.json())
    assert answer["result"] == "success" and answer["message"] == "Zone Purged", answer
    assert isinstance(answer["id"], int), answer
    assert isinstance(answer.get("pending") or [], list), answer
    return answer


def purged_everywhere(
    api: Server, zone: Zone, files: list[str] | None, *, delete: bool, timeout: float
) -> dict[str, Any]:
    """Purge again and again until a purge answers 200 with no pending edge (the bus may be
    coming back): every live edge then applied it, and every purge before it."""

    def attempt() -> dict[str, Any] | None:
        r = api.purge(zone["id"], files, delete=delete)
        if r.status_code != 200:
            assert r.status_code == 503, r.text
            return None
        answer = dict(r.json())
        return answer if not answer.get("pending") else None

    return until(attempt, timeout, "a purge answered 200 with no pending edge")


def cluster_status(urls: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pullzone", "cluster", "status"]
    return subprocess.run(
        [*command, "--cluster", ",".join(urls), *options],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PULLZONE_API_KEY": API_KEY, "COLUMNS": "200"},
    )


@pytest.fixture(scope="module", autouse=True)
def probe_route(origin: Origin) -> None:
    origin.route(PROBE, Reply(headers=[("Cache-Control", "no-store")], body=b"probe"))


# -- max-bus-silence (a node of its own) ----------------------------------------------------


@pytest.mark.timeout(120)
def test_an_edge_cut_off_longer_than_max_bus_silence_revalidates_every_object(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    nats = NatsServer(tmp_path, "solo").start()
    solo = node(tmp_path, "solo-node", "all", [nats.url], "--max-bus-silence", "1")
    try:
        with running([solo]):
            zone = new_zone(solo, origin, [solo])
            version = versioned(origin, path)
            warm([solo], zone, [path])

            nats.stop()
            # Until the silence is longer than a second the edge may still answer HIT from
            # its cache (the object is fresh and nothing was purged); after that, never.
            until(
                lambda: cache(solo, zone, path) == "REVALIDATED",
                10,
                "REVALIDATED from an edge cut off from the bus",
            )
            for _ in range(3):
                before = origin.count(path)
                assert cache(solo, zone, path) == "REVALIDATED"
                assert origin.count(path) == before + 1
                assert origin.seen[path][-1].headers.get("if-none-match") == '"v1"'

            # The origin changed while the bus is away: from now on the new bytes, never the
            # cached ones (each answer comes from a request to the origin: not a HIT).
            version[0] = 2
            v2 = f"{path} v2".encode()
            for _ in range(3):
                r = solo.get(zone["fqdn"], path)
                assert (r.content, r.headers["x-cache"] != "HIT") == (v2, True), r.headers

            # The bus is back: the edge serves from its cache again, the new bytes.
            nats.start()

            def hit() -> bool:
                r = solo.get(zone["fqdn"], path)
                assert r.content == v2, r.headers
                return r.headers["x-cache"] == "HIT"

            until(hit, 20, "HIT again once the bus is back")
            assert solo.get(zone["fqdn"], path).content == v2
    finally:
        nats.stop()


@pytest.mark.timeout(120)
def test_a_purge_answered_while_an_edge_is_silent_lists_it_until_it_would_revalidate(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    """An edge the API has not heard from for 5 s is not waited for; but its workers may
    still serve from its cache (it revalidates everything only past --max-bus-silence),
    so the answer lists it in `pending` rather than claim the purge is everywhere."""
    nats = NatsServer(tmp_path, "silent").start()
    api = node(tmp_path, "api", "api", [nats.url])
    edge = node(tmp_path, "edge-1", "edge", [nats.url])
    try:
        with running([api, edge]):
            zone = new_zone(api, origin, [edge])
            versioned(origin, path)
            warm([edge], zone, [path])
            metrics = api.api_url.removesuffix("/v2") + "/metrics"
            assert edge.process is not None
            os.kill(edge.process.pid, signal.SIGSTOP)  # its workers go on serving
            try:
                until(
                    lambda: 'node="edge-1"' not in api.api.get(metrics).text,
                    20,
                    "the API no longer counting edge-1 as live",
                )
                answer = purged(api, zone, [path], delete=True)
                assert answer.get("pending") == ["edge-1"], answer
                assert cache(edge, zone, path) == "HIT"  # what the listing warns of
            finally:
                os.kill(edge.process.pid, signal.SIGCONT)
            purged_everywhere(api, zone, [f"{path}.sentinel"], delete=True, timeout=30)
            assert cache(edge, zone, path) == "MISS"
    finally:
        nats.stop()


# -- purges through a three-server NATS cluster losing one server ---------------------------


@pytest.mark.timeout(180)
def test_every_purge_answered_during_a_nats_server_failure_reaches_every_edge(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    nats = NatsCluster(tmp_path)
    replicas = ("--replicas", "3")
    api = node(tmp_path, "api", "api", nats.urls, *replicas)
    edges = {f"edge-{i}": node(tmp_path, f"edge-{i}", "edge", nats.urls, *replicas) for i in (1, 2)}
    try:
        nats.start()
        with running([api, *edges.values()]):
            zone = new_zone(api, origin, edges.values())
            base = path.rsplit("/", 1)[0]
            paths = [f"{base}/{i}.txt" for i in range(30)]
            for p in paths:
                versioned(origin, p)
            warm(edges.values(), zone, paths)

            answered: list[str] = []
            refused: list[str] = []
            unchecked: list[tuple[str, str]] = []  # (edge, path) that were pending
            killed = None
            for i, p in enumerate(paths):
                if i == 10:
                    killed = nats.stream_leader(STREAM) or nats.servers[0]
                    killed.kill()
                r = api.purge(zone["id"], [p], delete=True)
                if r.status_code != 200:
                    assert r.status_code == 503, (p, r.status_code, r.text)
                    assert r.json()["result"] == "error", r.text
                    refused.append(f"{p}: {r.json()['message']}")
                    continue
                answered.append(p)
                pending = set(r.json().get("pending") or [])
                assert pending <= set(edges), r.text
                for name, edge in edges.items():
                    if name in pending:
                        unchecked.append((name, p))
                    else:
                        assert cache(edge, zone, p) == "MISS", (name, p, r.text)
            assert killed is not None

            # Edges that were pending must have applied those purges before serving them:
            # once a later purge is confirmed by every edge, look at what they serve.
            sentinel = f"{base}/sentinel.txt"
            versioned(origin, sentinel)
            purged_everywhere(api, zone, [sentinel], delete=True, timeout=30)
            for name, p in unchecked:
                assert cache(edges[name], zone, p) == "MISS", (name, p)

            # The API retries a publish (same message id: stored once) while JetStream
            # elects a new leader, so at most a rare purge is refused.
            assert len(refused) <= 2, (
                f"{len(refused)} of {len(paths)} purges refused after {killed.name} was killed",
                refused,
            )
    finally:
        nats.stop()


# -- one NATS server, three edges and an API node shared by the tests below -----------------


@dataclass
class Cluster:
    nats: NatsServer
    api: Server
    edges: dict[str, Server]

    @property
    def urls(self) -> list[str]:
        return [self.nats.url]

    def zone(self, origin: Origin) -> Zone:
        return new_zone(self.api, origin, self.edges.values())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    nats = NatsServer(tmp, "nats")
    api = node(tmp, "api", "api", [nats.url])
    edges = {f"edge-{i}": node(tmp, f"edge-{i}", "edge", [nats.url]) for i in (1, 2, 3)}
    try:
        nats.start()
        with running([api, *edges.values()]):
            yield Cluster(nats, api, edges)
    finally:
        nats.stop()


@pytest.mark.timeout(90)
def test_a_glob_purge_reaches_every_edge_before_the_answer(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = cluster.zone(origin)
    base = path.rsplit("/", 1)[0]
    soft, hard, other = (f"{base}/{name}" for name in ("s/a.js", "h/b/c.js", "s/a.css"))
    for p in (soft, hard, other):
        versioned(origin, p)
    edges = cluster.edges.values()
    warm(edges, zone, [soft, hard, other])

    answer = purged(cluster.api, zone, [f"{base}/s/*.js"])
    assert not answer.get("pending"), answer
    for edge in edges:
        assert cache(edge, zone, soft) in NOT_HIT_SOFT, edge.edge_url
        assert cache(edge, zone, hard) == "HIT", edge.edge_url

    answer = purged(cluster.api, zone, [f"{base}/*/c.js"], delete=True)
    assert not answer.get("pending"), answer
    for edge in edges:
        assert cache(edge, zone, hard) == "MISS", edge.edge_url
        assert cache(edge, zone, other) == "HIT", edge.edge_url


@pytest.mark.timeout(90)
def test_a_purge_through_the_api_node_reaches_every_edge_before_the_answer(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = cluster.zone(origin)
    base = path.rsplit("/", 1)[0]
    soft, hard, other = (f"{base}/{name}.txt" for name in ("soft", "hard", "other"))
    for p in (soft, hard, other):
        versioned(origin, p)
    edges = cluster.edges.values()
    warm(edges, zone, [soft, hard, other])

    answer = purged(cluster.api, zone, [soft])
    assert not answer.get("pending"), answer
    for edge in edges:
        assert cache(edge, zone, soft) in NOT_HIT_SOFT, edge.edge_url
        assert cache(edge, zone, other) == "HIT", edge.edge_url

    answer = purged(cluster.api, zone, [hard], delete=True)
    assert not answer.get("pending"), answer
    for edge in edges:
        assert cache(edge, zone, hard) == "MISS", edge.edge_url
        assert cache(edge, zone, other) == "HIT", edge.edge_url

    # The whole zone, soft: nothing of it is served as fresh by any edge.
    for edge in edges:
        for p in (soft, hard):
            assert cache(edge, zone, p) == "HIT", (edge.edge_url, p)
    answer = purged(cluster.api, zone)
    assert not answer.get("pending"), answer
    for edge in edges:
        for p in (soft, hard, other):
            assert cache(edge, zone, p) in NOT_HIT_SOFT, (edge.edge_url, p)


@pytest.mark.timeout(90)
def test_a_prefetch_stores_the_objects_on_every_edge_before_the_answer(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = cluster.zone(origin)
    base = path.rsplit("/", 1)[0]
    files = [f"{base}/p{i}.txt" for i in range(5)]
    for p in files:
        versioned(origin, p)
    answer = cluster.api.api.post(
        f"/zones/http/pull/{zone['id']}/prefetch", json={"files": files}
    ).json()
    assert (answer["result"], answer["files"], answer.get("pending")) == ("success", 5, None)
    for p in files:
        assert origin.count(p) == len(cluster.edges)  # one per edge, before any visitor
    for edge in cluster.edges.values():
        for p in files:
            assert cache(edge, zone, p) == "HIT", (edge.edge_url, p)
    assert all(origin.count(p) == len(cluster.edges) for p in files)


@pytest.mark.timeout(90)
def test_cluster_status_lists_every_node_with_its_role_and_progress(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = cluster.zone(origin)
    versioned(origin, path)
    warm(cluster.edges.values(), zone, [path])
    assert not purged(cluster.api, zone, [path]).get("pending")
    roles = {"api": "api", **{name: "edge" for name in cluster.edges}}

    stream_seq: list[int] = []

    def caught_up() -> list[dict[str, Any]] | None:
        out = cluster_status(cluster.urls, "--json")
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        if isinstance(report, dict):  # {"stream_last_seq": N, "nodes": [...]}
            stream_seq[:] = [report["stream_last_seq"]]
            report = report["nodes"]
        assert isinstance(report, list), report
        by_name = {n["node"]: n for n in report}
        if not set(roles) <= set(by_name):
            return None
        edges = [by_name[name] for name in cluster.edges]
        return report if all(e["lag"] == 0 for e in edges) else None

    nodes = until(caught_up, 15, "`cluster status` showing every edge caught up")
    by_name = {n["node"]: n for n in nodes}
    for name, role in roles.items():
        entry = by_name[name]
        assert {"node", "role", "applied", "lag", "age"} <= set(entry), entry
        assert entry["role"] == role, entry
        assert isinstance(entry["age"], int | float) and 0 <= entry["age"] < 15, entry
    applied = {by_name[name]["applied"] for name in cluster.edges}
    assert len(applied) == 1 and next(iter(applied)) > 0, nodes
    if stream_seq:
        assert applied == set(stream_seq), (stream_seq, nodes)

    # Each role listens only where it serves: no edge on the API node, no API on edges.
    # Asked of the processes' own sockets: a port left unbound may be another test's now.
    api_ports = cluster.api.listening()
    assert cluster.api.api_port in api_ports and cluster.api.edge_port not in api_ports
    for edge in cluster.edges.values():
        ports = edge.listening()
        assert edge.edge_port in ports and edge.api_port not in ports, ports

    out = cluster_status(cluster.urls)
    assert out.returncode == 0, out.stderr
    for name, role in roles.items():
        assert name in out.stdout and role in out.stdout, out.stdout

    # The API node's /metrics: each live edge's lag behind what the API node applied.
    metrics = cluster.api.api.get(cluster.api.api_url.removesuffix("/v2") + "/metrics")
    assert metrics.status_code == 200, metrics.text
    for name in cluster.edges:
        assert f'pullzone_cluster_node_lag{{node="{name}"}} 0.0' in metrics.text, metrics.text


@pytest.mark.timeout(120)
def test_an_edge_killed_and_restarted_applies_the_purges_it_missed_before_serving(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = cluster.zone(origin)
    base = path.rsplit("/", 1)[0]
    hard, soft, kept = (f"{base}/{name}.txt" for name in ("hard", "soft", "kept"))
    for p in (hard, soft, kept):
        versioned(origin, p)
    warm(cluster.edges.values(), zone, [hard, soft, kept])

    name, victim = "edge-3", cluster.edges["edge-3"]
    others = [e for n, e in cluster.edges.items() if n != name]
    victim.kill()
    try:
        # Its heartbeat may still look fresh: the answers may list it as pending.
        for p, delete in ((hard, True), (soft, False)):
            answer = purged(cluster.api, zone, [p], delete=delete)
            assert set(answer.get("pending") or []) <= {name}, answer
        for edge in others:
            assert cache(edge, zone, hard) == "MISS", edge.edge_url
            assert cache(edge, zone, soft) in NOT_HIT_SOFT, edge.edge_url

        victim.start()  # it applies what it missed before its workers start
        assert cache(victim, zone, hard) == "MISS"
        assert cache(victim, zone, soft) in NOT_HIT_SOFT
        assert cache(victim, zone, kept) in ("HIT", "REVALIDATED")
        # Once it has caught up with the stream it serves from its cache again (until
        # then it revalidates every object: REVALIDATED, never a HIT).
        until(lambda: cache(victim, zone, hard) == "HIT", 15, "HITs after catching up")
    finally:
        if not victim.running:
            with contextlib.suppress(Exception):
                victim.start()


@pytest.mark.timeout(120)
def test_bus_unreachable_purges_answer_503_edges_keep_serving_and_recover(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    zone = cluster.zone(origin)
    base = path.rsplit("/", 1)[0]
    target, kept = f"{base}/target.txt", f"{base}/kept.txt"
    for p in (target, kept):
        versioned(origin, p)
    edges = cluster.edges.values()
    warm(edges, zone, [target, kept])

    cluster.nats.stop()
    try:
        for delete in (True, False):
            r = cluster.api.purge(zone["id"], [target], delete=delete)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["result"] == "error", body
            assert isinstance(body["message"], str) and body["message"], body
        for edge in edges:
            for p in (target, kept):
                assert cache(edge, zone, p) == "HIT", (edge.edge_url, p)
    finally:
        if cluster.nats.process is None:
            cluster.nats.start()

    # The API reconnects on its own; the edges too.
    purged_everywhere(cluster.api, zone, [target], delete=True, timeout=30)
    for edge in edges:
        assert cache(edge, zone, target) == "MISS", edge.edge_url
        assert cache(edge, zone, kept) == "HIT", edge.edge_url


@pytest.mark.timeout(90)
def test_an_event_no_edge_can_apply_is_quarantined_and_later_purges_reach_every_edge(
    cluster: Cluster, origin: Origin, path: str
) -> None:
    """A stored event that cannot be applied (here published straight to the stream, as
    an older release or a bug might) is set aside on every node; it never stops the
    events behind it."""
    import asyncio

    import nats

    zone = cluster.zone(origin)
    versioned(origin, path)
    edges = cluster.edges.values()
    warm(edges, zone, [path])
    bad = {"files": [{"path": "/a\ud800"}], "delete": False, "key_id": "admin"}
    body = {"kind": "purge", "zone_id": zone["id"], "payload": bad, "at": time.time()}

    async def publish() -> int:
        nc = await nats.connect(cluster.nats.url)
        try:
            ack = await nc.jetstream().publish("pullzone.events.purge", json.dumps(body).encode())
            return int(ack.seq)
        finally:
            await nc.close()

    bad_seq = asyncio.run(publish())
    answer = purged(cluster.api, zone, [path])
    assert not answer.get("pending"), answer
    for edge in edges:
        assert cache(edge, zone, path) in NOT_HIT_SOFT, edge.edge_url
    assert answer["id"] > bad_seq

    def every_edge_says_so() -> bool:
        status = json.loads(cluster_status(cluster.urls, "--json").stdout)
        counts = {n["node"]: n["quarantined"] for n in status["nodes"]}
        return all(counts.get(name, 0) >= 1 for name in cluster.edges)

    until(every_edge_says_so, 10, "every edge reporting the quarantined event")
