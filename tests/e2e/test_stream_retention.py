"""A bounded event stream (docs/cluster.md, Retention and snapshots) end to end: a real
nats-server and `pullzone serve` nodes with a retention of seconds, so events age out
within the test. Every wait polls an observable condition with a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from nats_servers import NatsServer
from origin import Origin, Reply
from server import Server
from test_cluster import (
    PROBE,
    cache,
    cluster_status,
    node,
    purged,
    running,
    until,
    versioned,
)

from pullzone.bus.jetstream import JetStreamBus
from pullzone.bus.snapshot_store import BUCKET, SnapshotStore

FLAGS = ("--stream-retention", "4s", "--snapshot-interval", "2s")
NODE = "cut-edge"  # the node cut off while running
_aliases = itertools.count(1)


def events_stream(nats: NatsServer) -> dict[str, Any] | None:
    """The stream as the server's monitoring reports it, with its consumers."""
    streams = [
        stream
        for account in nats.jsz(consumers=True).get("account_details", [])
        for stream in account.get("stream_detail", [])
        if stream["name"] == "PULLZONE_EVENTS"
    ]
    return streams[0] if streams else None


def stream_first_seq(nats: NatsServer) -> int:
    """The stream's first stored event (what retention has not dropped yet)."""
    stream = events_stream(nats)
    return int(stream["state"]["first_seq"]) if stream else 0


def pull_requests_waiting(nats: NatsServer, durable: str) -> int:
    """Fetches of the node's consumer the server still holds open: events published
    meanwhile would be sent to the node, however long it does not read them."""
    stream = events_stream(nats)
    consumers = {c["name"]: c for c in (stream or {}).get("consumer_detail", [])}
    return int(consumers[durable].get("num_waiting", 0))


@pytest.fixture(autouse=True)
def probe_route(origin: Origin) -> None:
    origin.route(PROBE, Reply(headers=[("Cache-Control", "no-store")], body=b"probe"))


@pytest.mark.timeout(120)
def test_a_node_joining_after_events_aged_out_starts_from_a_snapshot(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    nats = NatsServer(tmp_path, "retention").start()
    api = node(tmp_path, "api", "api", [nats.url], *FLAGS)
    try:
        with running([api]):
            zones = [api.create_zone(origin.url, alias=f"aged{next(_aliases)}") for _ in range(3)]
            r = api.api.post(f"/zones/http/pull/{zones[0]['id']}", json={"cnames": "late.example"})
            assert r.status_code == 200, r.text
            versioned(origin, path)
            # The events that made the zones age out of the stream (a purge keeps it going).
            until(
                lambda: purged(api, zones[1], ["/x"]) and stream_first_seq(nats) > 4,
                30,
                "the zones' events gone from the stream",
            )
            late = node(tmp_path, "late", "edge", [nats.url], *FLAGS)
            with running([late]):
                assert "started from snapshot" in late.output()
                for z in zones:
                    assert cache(late, z, path) == "MISS"
                    assert cache(late, z, path) == "HIT"
                r = late.get("late.example", path)
                assert r.status_code == 200, r.text
    finally:
        nats.stop()


@pytest.mark.timeout(120)
def test_a_node_away_longer_than_the_retention_serves_no_object_purged_meanwhile(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    nats = NatsServer(tmp_path, "away").start()
    api = node(tmp_path, "api", "api", [nats.url], *FLAGS)
    edge = node(tmp_path, "away-edge", "edge", [nats.url], *FLAGS)
    try:
        with running([api]):
            with running([edge]):
                zone = api.create_zone(origin.url, alias=f"away{next(_aliases)}")
                until(lambda: edge.get(zone["fqdn"], PROBE).status_code == 200, 10, "zone")
                version = versioned(origin, path)
                assert cache(edge, zone, path) == "MISS"
                assert cache(edge, zone, path) == "HIT"
            # Away: the object changes and is purged, and the purge ages out.
            version[0] = 2
            purge = purged(api, zone, [path])
            until(
                lambda: purged(api, zone, ["/y"]) and stream_first_seq(nats) > purge["id"],
                30,
                "the purge gone from the stream",
            )
            before = origin.count(path)
            with running([edge]):
                r = edge.get(zone["fqdn"], path)
                assert r.content == f"{path} v2".encode(), r.headers
                assert r.headers["x-cache"] != "HIT"
                assert origin.count(path) == before + 1
    finally:
        nats.stop()


def drop_snapshots(nats: NatsServer) -> None:
    """Delete every snapshot from the cluster's store."""

    async def drop() -> None:
        bus = await JetStreamBus.connect([nats.url], "tests", observe=True)
        try:
            await SnapshotStore(await bus.object_store(BUCKET)).prune(keep=0)
        finally:
            await bus.close()

    asyncio.run(drop())


def stop_pulling(nats: NatsServer, edge: Server) -> None:
    """Stop the node's own process (its workers go on answering from what they have),
    once the server holds no fetch of its open: it then gets no event until resumed."""
    assert edge.process is not None
    os.kill(edge.process.pid, signal.SIGSTOP)
    until(lambda: pull_requests_waiting(nats, NODE) == 0, 10, "no fetch held open")


def resume(edge: Server) -> None:
    assert edge.process is not None
    os.kill(edge.process.pid, signal.SIGCONT)


def missed_events(nats: NatsServer, name: str) -> bool | None:
    """The node's `missed_events` in the registry (`cluster status`); None while unlisted."""
    out = cluster_status([nats.url], "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    entries = {n["node"]: n for n in report["nodes"]}
    return None if name not in entries else bool(entries[name]["missed_events"])


@pytest.mark.timeout(150)
def test_a_running_node_cut_off_longer_than_the_retention_restores_a_snapshot_in_place(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    nats = NatsServer(tmp_path, "cut-off").start()
    api = node(tmp_path, "api", "api", [nats.url], *FLAGS)
    edge = node(tmp_path, NODE, "edge", [nats.url], *FLAGS)
    try:
        with running([api, edge]):
            zone = api.create_zone(origin.url, alias=f"cut{next(_aliases)}")
            until(lambda: edge.get(zone["fqdn"], PROBE).status_code == 200, 10, "zone")
            version = versioned(origin, path)
            assert cache(edge, zone, path) == "MISS"
            assert cache(edge, zone, path) == "HIT"
            # Stopped, the node hears nothing while a zone is made and the object purged,
            # and those events age out of the stream.
            stop_pulling(nats, edge)
            try:
                version[0] = 2
                made = api.create_zone(origin.url, alias=f"cut{next(_aliases)}")
                purge = purged(api, zone, [path])
                until(
                    lambda: purged(api, zone, ["/y"]) and stream_first_seq(nats) > purge["id"],
                    30,
                    "the zone and the purge gone from the stream",
                )
            finally:
                resume(edge)
            until(
                lambda: edge.get(made["fqdn"], PROBE).status_code == 200,
                30,
                "the zone made while cut off served",
            )
            until(lambda: missed_events(nats, NODE) is False, 30, "missed_events false")
            before = origin.count(path)
            r = edge.get(zone["fqdn"], path)
            assert r.content == f"{path} v2".encode(), r.headers
            assert r.headers["x-cache"] != "HIT"
            assert origin.count(path) == before + 1
            assert "restored snapshot" in edge.output()
            assert edge.running
    finally:
        nats.stop()


@pytest.mark.timeout(150)
def test_a_running_node_that_finds_no_snapshot_restores_one_once_it_is_written(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    nats = NatsServer(tmp_path, "no-snapshot").start()
    api = node(tmp_path, "api", "api", [nats.url], *FLAGS)
    edge = node(tmp_path, NODE, "edge", [nats.url], *FLAGS)
    try:
        with running([api, edge]):
            zone = api.create_zone(origin.url, alias=f"cut{next(_aliases)}")
            until(lambda: edge.get(zone["fqdn"], PROBE).status_code == 200, 10, "zone")
            stop_pulling(nats, edge)
            try:
                made = api.create_zone(origin.url, alias=f"cut{next(_aliases)}")
                purge = purged(api, zone, ["/x"])
                until(lambda: stream_first_seq(nats) > purge["id"], 30, "the events gone")
                api.stop()  # no snapshot written until it is back
                drop_snapshots(nats)
            finally:
                resume(edge)
            until(lambda: missed_events(nats, NODE) is True, 30, "missed_events true")
            assert edge.get(made["fqdn"], PROBE).status_code != 200
            api.launch().wait_ready(60)  # writes a snapshot at once (there is none)
            until(lambda: missed_events(nats, NODE) is False, 30, "missed_events false")
            assert edge.get(made["fqdn"], PROBE).status_code == 200
            assert "no snapshot covers them" in edge.output()
            assert "restored snapshot" in edge.output()
    finally:
        nats.stop()
