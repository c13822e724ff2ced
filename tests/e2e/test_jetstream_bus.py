"""The JetStream bus (README, Cluster) against real nats-server processes: no mocks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import nats
import pytest
from nats_servers import NatsCluster, NatsServer

from pullzone.bus.events import PURGE, ZONE_PUT, Event
from pullzone.bus.jetstream import NODES, STREAM, BusUnavailable, JetStreamBus


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Inbox:
    """A handler that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.events]


@pytest.fixture()
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path, "solo").start()
    yield server
    server.stop()


@pytest.fixture()
async def bus(nats_server: NatsServer) -> AsyncIterator[JetStreamBus]:
    bus = await JetStreamBus.connect([nats_server.url], "api")
    yield bus
    await bus.close()


async def test_publish_answers_the_stream_sequence_and_a_consumer_gets_every_event_in_order(
    bus: JetStreamBus,
) -> None:
    published = [await bus.publish(PURGE, i % 3, {"paths": [f"/{i}"]}) for i in range(20)]
    assert [e.seq for e in published] == list(range(1, 21))
    assert await bus.last_stream_seq() == 20

    inbox = Inbox()
    await bus.consume("edge-1", inbox)
    await until(lambda: len(inbox.events) >= 20)
    published.append(await bus.publish(ZONE_PUT, 7, {"origin": "http://o"}))
    await until(lambda: len(inbox.events) >= 21)
    assert [(e.seq, e.kind, e.zone_id, e.payload) for e in inbox.events] == [
        (e.seq, e.kind, e.zone_id, e.payload) for e in published
    ]
    assert inbox.events[0].at == published[0].at


async def test_a_durable_consumer_resumes_where_it_acked_and_gets_its_unacked_event_again(
    nats_server: NatsServer, bus: JetStreamBus
) -> None:
    for i in range(10):
        await bus.publish(PURGE, 1, {"i": i})

    first = Inbox()
    edge = await JetStreamBus.connect([nats_server.url], "edge")
    await edge.consume("edge", first)
    await until(lambda: len(first.events) == 10)
    await edge.close()

    for i in range(10, 15):
        await bus.publish(PURGE, 1, {"i": i})
    second = Inbox()
    stuck = asyncio.Event()

    async def stuck_at_13(event: Event) -> None:
        if event.seq == 13:
            stuck.set()
            await asyncio.Event().wait()  # never returns: 13 is never acked
        await second(event)

    edge = await JetStreamBus.connect([nats_server.url], "edge")
    await edge.consume("edge", stuck_at_13)
    await asyncio.wait_for(stuck.wait(), 10)
    await edge.close()
    assert second.seqs == [11, 12]

    third = Inbox()
    edge = await JetStreamBus.connect([nats_server.url], "edge")
    await edge.consume("edge", third)
    await until(lambda: len(third.events) >= 3)
    await edge.close()
    assert third.seqs == [13, 14, 15]
    assert [e.payload["i"] for e in first.events + second.events + third.events] == list(range(15))


async def test_events_delivered_to_a_process_that_died_are_handed_over_at_once(
    nats_server: NatsServer, bus: JetStreamBus
) -> None:
    first = Inbox()
    edge = await JetStreamBus.connect([nats_server.url], "edge")
    await edge.consume("edge", first)
    for i in range(3):
        await bus.publish(PURGE, 1, {"i": i})
    await until(lambda: len(first.events) == 3)
    await edge.close()

    for i in range(3, 8):
        await bus.publish(PURGE, 1, {"i": i})
    # A process takes 4..8 from the durable and dies before acking any of them (the first
    # edge's last pull request may have taken 4 already: as good).
    dead = await nats.connect(nats_server.url)
    taken = await (await dead.jetstream().pull_subscribe_bind("edge", STREAM)).fetch(5, 2)
    assert [m.metadata.sequence.stream for m in taken][-4:] == [5, 6, 7, 8]
    await dead.close()

    # Not after the 30 s ack wait: now, and in order.
    second = Inbox()
    edge = await JetStreamBus.connect([nats_server.url], "edge")
    await edge.consume("edge", second)
    await until(lambda: len(second.events) >= 5, timeout=5)
    await edge.close()
    assert second.seqs == [4, 5, 6, 7, 8]


async def test_a_failing_handler_gets_the_same_event_again_before_any_later_one(
    bus: JetStreamBus,
) -> None:
    calls: list[int] = []
    failures = {3: 2}  # event 3 fails twice

    async def flaky(event: Event) -> None:
        calls.append(event.seq)
        if failures.get(event.seq, 0) > 0:
            failures[event.seq] -= 1
            raise RuntimeError("cannot apply right now")

    for i in range(5):
        await bus.publish(PURGE, 1, {"i": i})
    await bus.consume("edge", flaky)
    await until(lambda: calls[-1:] == [5])
    assert calls == [1, 2, 3, 3, 3, 4, 5]


async def test_publish_fails_fast_while_the_server_is_down_and_works_after_restart(
    nats_server: NatsServer, bus: JetStreamBus
) -> None:
    inbox = Inbox()
    await bus.consume("edge", inbox)
    for i in range(3):
        await bus.publish(PURGE, 1, {"i": i})
    await until(lambda: len(inbox.events) == 3)

    nats_server.stop()
    started = time.monotonic()
    with pytest.raises(BusUnavailable):
        await bus.publish(PURGE, 1, {"i": "lost"})
    assert time.monotonic() - started < 3.0  # at most the 2 s ack timeout
    await until(lambda: not bus.connected, timeout=3)
    started = time.monotonic()
    with pytest.raises(BusUnavailable):
        await bus.publish(PURGE, 1, {"i": "lost"})
    with pytest.raises(BusUnavailable):
        await bus.kv_put(NODES, "1", {"id": 1})
    assert time.monotonic() - started < 0.5  # known disconnected: no wait at all

    nats_server.start()
    await until(lambda: bus.connected)
    event = await bus.publish(PURGE, 1, {"i": 3})
    # File storage: what was stored before the restart is still there, nothing more.
    assert event.seq == 4
    await until(lambda: len(inbox.events) == 4)
    assert [e.payload["i"] for e in inbox.events] == [0, 1, 2, 3]
    replay = Inbox()
    await bus.consume("late-edge", replay, start_seq=2)
    await until(lambda: len(replay.events) == 3)
    assert replay.seqs == [2, 3, 4]


async def test_connecting_to_no_server_raises_bus_unavailable_quickly(tmp_path: Path) -> None:
    dead = NatsServer(tmp_path, "never-started")
    started = time.monotonic()
    with pytest.raises(BusUnavailable):
        await JetStreamBus.connect([dead.url], "edge")
    assert time.monotonic() - started < 3.0


async def test_a_repeated_msg_id_is_stored_once(bus: JetStreamBus) -> None:
    first = await bus.publish(PURGE, 1, {"paths": ["/a"]}, msg_id="purge-1")
    again = await bus.publish(PURGE, 1, {"paths": ["/a"]}, msg_id="purge-1")
    other = await bus.publish(PURGE, 1, {"paths": ["/a"]}, msg_id="purge-2")
    assert (first.seq, again.seq, other.seq) == (1, 1, 2)
    assert await bus.last_stream_seq() == 2


async def test_wait_applied_lists_the_nodes_that_did_not_confirm(
    nats_server: NatsServer, bus: JetStreamBus
) -> None:
    edges = [await JetStreamBus.connect([nats_server.url], name) for name in ("a", "b")]
    try:

        def applier(edge: JetStreamBus) -> Callable[[Event], Awaitable[None]]:
            async def apply(event: Event) -> None:
                await edge.report_applied(event.seq)

            return apply

        for edge in edges:
            await edge.consume(edge.node_id, applier(edge))
        event = await bus.publish(PURGE, 1, {"paths": ["/x"]})
        assert await bus.wait_applied(event.seq, {"a", "b"}) == set()
        # Confirmations that came before the wait count.
        assert await bus.wait_applied(event.seq, {"a"}, timeout=0.1) == set()

        started = time.monotonic()
        assert await bus.wait_applied(event.seq, {"a", "b", "c"}, timeout=0.5) == {"c"}
        assert 0.5 <= time.monotonic() - started < 1.5
        assert await bus.wait_applied(event.seq + 1, {"a"}, timeout=0.2) == {"a"}
    finally:
        for edge in edges:
            await edge.close()


async def test_heartbeats_list_live_nodes_and_expire(nats_server: NatsServer) -> None:
    nodes = [
        await JetStreamBus.connect([nats_server.url], name, node_ttl=1.0)
        for name in ("api", "edge-1", "edge-2")
    ]
    try:
        for i, node in enumerate(nodes):
            await node.heartbeat({"role": "edge" if i else "api", "applied": i})
        listed = await nodes[0].nodes()
        assert [(n["node"], n["role"], n["applied"]) for n in listed] == [
            ("api", "api", 0),
            ("edge-1", "edge", 1),
            ("edge-2", "edge", 2),
        ]
        assert all(abs(n["at"] - time.time()) < 5 for n in listed)

        # Only the api keeps beating: the edges drop out after the TTL.
        deadline = time.monotonic() + 5
        while len(listed) > 1:
            assert time.monotonic() < deadline, listed
            await nodes[0].heartbeat({"role": "api", "applied": 0})
            await asyncio.sleep(0.2)
            listed = await nodes[0].nodes()
        assert [n["node"] for n in listed] == ["api"]
        assert await nodes[0].kv_items(NODES) == {"api": listed[0]}
    finally:
        for node in nodes:
            await node.close()


async def test_kv_helpers_put_and_list(bus: JetStreamBus) -> None:
    await bus.kv_put(NODES, "a", {"id": 1, "origin": "http://a"})
    await bus.kv_put(NODES, "b", {"id": 2})
    await bus.kv_put(NODES, "a", {"id": 1, "origin": "http://b"})
    assert await bus.kv_items(NODES) == {"a": {"id": 1, "origin": "http://b"}, "b": {"id": 2}}
    with pytest.raises(ValueError):
        await bus.kv_items("no_such_bucket")


async def test_known_nodes_lists_the_announced_and_not_the_withdrawn(
    nats_server: NatsServer,
) -> None:
    """The KNOWN bucket read to its last entry, deletions included: a withdrawn node last
    (its deletion is the bucket's newest entry), then every node withdrawn (only
    deletions left), then none ever announced."""
    nodes = [await JetStreamBus.connect([nats_server.url], f"e{i}", role="edge") for i in range(3)]
    try:
        edges = frozenset({"edge"})
        assert await nodes[0].known_nodes(edges) == {}
        for node in nodes:
            await node.announce()
        assert sorted(await nodes[0].known_nodes(edges)) == ["e0", "e1", "e2"]
        await nodes[2].withdraw()
        for _ in range(20):  # each listing reads the bucket anew
            assert sorted(await nodes[0].known_nodes(edges)) == ["e0", "e1"]
        await nodes[0].withdraw()
        await nodes[1].withdraw()
        assert await nodes[1].known_nodes(edges) == {}
        await nodes[1].announce()
        assert list(await nodes[0].known_nodes(edges)) == ["e1"]
    finally:
        for node in nodes:
            await node.close()


async def test_nodes_connecting_at_once_share_one_stream(nats_server: NatsServer) -> None:
    nodes = await asyncio.gather(
        *(JetStreamBus.connect([nats_server.url], f"n{i}") for i in range(4))
    )
    try:
        seqs = [(await node.publish(PURGE, 1, {})).seq for node in nodes]
        assert seqs == [1, 2, 3, 4]
    finally:
        for node in nodes:
            await node.close()


async def test_a_three_server_cluster_loses_no_acked_event_when_the_stream_leader_dies(
    tmp_path: Path,
) -> None:
    cluster = NatsCluster(tmp_path, size=3).start()
    try:
        api = await JetStreamBus.connect(cluster.urls, "api", replicas=3)
        edge = await JetStreamBus.connect(cluster.urls, "edge", replicas=3)
        inbox = Inbox()
        await edge.consume("edge", inbox)
        client = await nats.connect(cluster.urls)
        leader = (await client.jetstream().stream_info(STREAM)).cluster
        await client.close()
        assert leader is not None and leader.leader is not None

        acked: dict[int, int] = {}  # stream seq -> i
        refused = 0
        deadline = time.monotonic() + 25
        for i in range(40):
            if i == 15:
                cluster.server(leader.leader).kill()
            while True:
                assert time.monotonic() < deadline, f"no publish acked since #{i}"
                try:
                    event = await api.publish(PURGE, 1, {"i": i}, msg_id=f"p{i}")
                except BusUnavailable:
                    refused += 1
                    await asyncio.sleep(0.1)
                    continue
                acked[event.seq] = i
                break

        await until(lambda: set(acked) <= set(inbox.seqs), timeout=20)
        assert sorted(acked.values()) == list(range(40))  # msg ids: each stored once
        assert inbox.seqs == sorted(set(inbox.seqs))  # in order, no duplicates
        assert [inbox.events[inbox.seqs.index(s)].payload["i"] for s in acked] == list(
            acked.values()
        )
        await api.close()
        await edge.close()
    finally:
        cluster.stop()
