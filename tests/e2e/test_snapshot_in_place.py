"""Events that age out of the stream before a running node got them, against a real
nats-server with a retention of seconds, in process: the bus hands over the first event
still stored (it does not wait for the others for ever), and the node restores the
newest snapshot in place when that event reveals the gap, then applies it. The whole
nodes are tested in test_stream_retention.py; there the look every 2 s usually finds
the gap first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from nats_servers import NatsServer

from pullzone.bus import snapshots
from pullzone.bus.events import PURGE, CreateZone, Event
from pullzone.bus.jetstream import JetStreamBus
from pullzone.bus.snapshot_store import BUCKET, SnapshotStore
from pullzone.config import Settings
from pullzone.control.replica import Replica
from pullzone.server.cluster import ClusterNode
from pullzone.sqlite import connect
from pullzone.zones.model import Zone

RETENTION = 2.0  # seconds


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.02)


async def aged_out(bus: JetStreamBus, seq: int) -> None:
    """Wait until the stream no longer holds event `seq`."""
    deadline = time.monotonic() + RETENTION + 10
    while (await bus.stream_bounds())[0] <= seq:
        assert time.monotonic() < deadline, f"event {seq} still in the stream"
        await asyncio.sleep(0.05)


def zone(alias: str) -> CreateZone:
    draft = Zone(id=0, name=alias, alias=alias, origin="http://o.test", cnames=(f"{alias}.test",))
    return CreateZone(draft, derive_alias=False, stamp="2026-01-01 00:00:00")


async def publish_zone(bus: JetStreamBus, alias: str) -> Event:
    change = zone(alias)
    return await bus.publish(change.KIND, 0, change.to_payload())


@pytest.fixture()
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path, "in-place").start()
    yield server
    server.stop()


@pytest.fixture()
async def bus(nats_server: NatsServer) -> AsyncIterator[JetStreamBus]:
    bus = await JetStreamBus.connect([nats_server.url], "api", retention=RETENTION)
    yield bus
    await bus.close()


async def test_a_consumer_gets_the_first_event_kept_after_events_it_missed_aged_out(
    nats_server: NatsServer, bus: JetStreamBus
) -> None:
    got: list[int] = []

    async def handler(event: Event) -> None:
        got.append(event.seq)

    for i in range(2):
        await bus.publish(PURGE, 1, {"i": i})
    edge = await JetStreamBus.connect([nats_server.url], "edge", role="edge")
    await edge.consume("edge", handler)
    await until(lambda: got == [1, 2], 10, "the first events")
    await edge.close()  # away: its durable stays, at 2
    for i in range(2):
        await bus.publish(PURGE, 1, {"i": i})
    await aged_out(bus, 4)
    await bus.publish(PURGE, 1, {"i": 5})
    back = await JetStreamBus.connect([nats_server.url], "edge", role="edge")
    try:
        await back.consume("edge", handler)
        await until(lambda: got[2:] == [5], 10, "event 5, after 3 and 4 aged out")
    finally:
        await back.close()


async def test_a_running_node_restores_a_snapshot_when_an_event_reveals_the_gap(
    tmp_path: Path, nats_server: NatsServer, bus: JetStreamBus
) -> None:
    source = Replica(connect(tmp_path / "source.db"), "cdn.test")  # what the API node built
    for alias in ("one", "two", "three"):
        source.apply(await publish_zone(bus, alias))
    await SnapshotStore(await bus.object_store(BUCKET)).put(
        3, snapshots.encode(snapshots.capture(source.conn, "api"))
    )
    await aged_out(bus, 3)
    await publish_zone(bus, "four")
    await publish_zone(bus, "five")

    settings = Settings(data_dir=tmp_path / "node", node_id="late", role="api")
    settings.data_dir.mkdir()
    edge_bus = await JetStreamBus.connect([nats_server.url], "late", role="api")
    node = ClusterNode(settings, edge_bus, cache=None)
    try:
        # Reading the stream as a running node does (ClusterNode.start, without the
        # look every 2 s): event 4 comes first, after 1 to 3, which are gone.
        await edge_bus.consume("late", node._on_event, start_seq=1)
        await until(lambda: node.position == 5, 10, "event 5 applied")
        aliases = {z.alias for z in node.replica.zones.list()}
        assert aliases == {"one", "two", "three", "four", "five"}
        assert not node.missed_events
    finally:
        await edge_bus.close()
