"""A cluster node (README, Cluster): the event log is one JetStream stream that every node
reads through its own durable consumer and applies to its control.db replica and, on an
edge, to its cache. The API commits a change by publishing it and answers once this node
applied it and every live edge confirmed it (or the wait ran out: those are `pending`, as
is every edge silent for too short a time to be revalidating, below).

An edge that may have missed events (starting, reconnecting, or cut off from the bus for
longer than `max_bus_silence`) sets `revalidate_all` in the shared signal: its workers
serve no cached object without asking the origin until it has caught up again. A node
that finds events it needs aged out of the stream restores the newest snapshot in place
and goes on from there (docs/cluster.md, Retention and snapshots).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
import uuid
from collections import OrderedDict
from typing import Any

from pullzone import __version__
from pullzone.bus import local
from pullzone.bus.events import CreateKey, Event, Proposal, RevokeKey, UpdateKey
from pullzone.bus.jetstream import CLUSTER, LIVE_WITHIN, BusUnavailable, JetStreamBus
from pullzone.config import Settings, split_host_port
from pullzone.control.log import Committed, check_storable
from pullzone.control.replica import Replica
from pullzone.control.stats import recent_load
from pullzone.edge import shields
from pullzone.edge.internal import new_token
from pullzone.edge.shields import ShieldNode
from pullzone.edge.stats import read_snapshots
from pullzone.refusal import Reason, Refused
from pullzone.server.cache_node import CacheNode
from pullzone.server.snapshotting import (
    NodeSnapshots,
    SnapshotGap,
    needs_snapshot,
    restore_due,
)
from pullzone.sqlite import connect

log = logging.getLogger("pullzone.cluster")

# The nodes whose caches a change waits for: a purge answer means no edge and no origin
# shield serves the old object.
EDGE_ROLES = frozenset({"edge", "all", "shield"})
SHIELD_ROLES = frozenset({"shield"})
# The nodes visitors reach, whose traffic is the cluster's (a shield's is theirs again).
VISITOR_ROLES = frozenset({"edge", "all"})
HEARTBEAT = 1.0  # seconds between signs of life (applied position) on the bus
REGISTRY_EVERY = 2  # heartbeats between registry entries (what `cluster status` reads)
ANNOUNCE_EVERY = 300.0  # seconds between a visitor node's entries in the KNOWN bucket
PUBLISH_RETRY = 8.0  # longer than a JetStream leader election after a server dies
APPLY_WAIT = 10.0
CATCH_UP_AT_START = 10.0  # how long the API waits for its own node to apply a stored event
OUTCOMES_KEPT = 4096
RESTORE_RETRY = 2.0  # seconds between looks for events gone before this node applied them


def advertised(host: str, port: int) -> str:
    """Where other nodes reach a listener on `host`: this machine's name for a wildcard
    address, an IPv6 address in brackets."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


async def connect_time(address: str) -> float | None:
    """How long a TCP connection to HOST:PORT takes, in ms; None when it fails or takes
    longer than an edge waits for a shield (edge/shields.py CONNECT_TIMEOUT)."""
    host, port = split_host_port(address, 80)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(shields.CONNECT_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return None
    elapsed = (time.perf_counter() - started) * 1000
    writer.close()
    return round(elapsed, 2)


class DataMismatch(Exception):
    """The data directory and the cluster's stream do not belong together."""


class ClusterNode:
    def __init__(self, settings: Settings, bus: JetStreamBus, cache: CacheNode | None) -> None:
        self.settings = settings
        self.bus = bus
        self.cache = cache
        self.replica = Replica(connect(settings.control_db, private=True), settings.edge_domain)
        self.position = self.replica.position
        self._progress = asyncio.Condition()
        self._applying = asyncio.Lock()  # one event, or one snapshot restored, at a time
        self._refusals: OrderedDict[int, Refused] = OrderedDict()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.cluster_token = ""  # the cluster's secret, from the bus (start)
        self._shields: list[ShieldNode] | None = None  # as last written for the workers
        # Each live shield's connect time from here in ms (None: unreachable), for the
        # registry (`pullzone cluster status`).
        self._reach: dict[str, float | None] = {}
        self.snapshots = NodeSnapshots(settings, bus, self.replica, cache)
        # Events this node needed aged out of the stream while it ran (cut off longer than
        # the retention) and no snapshot restored covers them yet: nothing cached is
        # trusted until one does (docs/cluster.md).
        self.missed_events = False
        self._trust_lost = False  # for _keep_trust: check again that this node caught up

    async def start(self) -> None:
        conflict = local.bind_source(self.replica.conn, "jetstream")
        if conflict is not None:
            raise DataMismatch(
                f"{self.settings.data_dir} holds a single node's data: give a cluster node "
                "a data directory of its own (--data-dir)"
            )
        first, last = await self.bus.stream_bounds()
        if self.position > last:
            raise DataMismatch(
                f"{self.settings.data_dir} has applied event {self.position}, but the "
                f"cluster's stream ends at {last} (was the NATS store reset?): start this "
                "node with an empty --data-dir"
            )
        # Past the retention, or nothing yet: from the newest snapshot (server/snapshotting.py).
        try:
            restored = await self.snapshots.join(self.position, first, last)
        except SnapshotGap as exc:
            raise DataMismatch(str(exc)) from None
        if restored is not None:
            self.position = restored
        if self.cache is not None:
            self.cache.signal.set_revalidate_all(True)  # until caught up
            self.cache.catch_up()
        secret = await self.bus.kv_first(CLUSTER, "secret", {"token": new_token()})
        self.cluster_token = str(secret["token"])
        for node in await self.bus.nodes():
            self.bus.heard_of(node["node"], node.get("role", ""), time.time() - node["at"])
        self.bus.reconnect_listeners.append(self._on_reconnect)
        await self.bus.consume(
            self.settings.node_id,
            self._on_event,
            start_seq=self.position + 1,
            restart=restored is not None,
        )
        # Apply what was missed before the workers start (bounded: a long backlog goes on
        # in the background, with every object revalidated until it is done).
        if not await self._applied(last, CATCH_UP_AT_START):
            log.warning("still catching up with the stream (%d of %d)", self.position, last)
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="cluster-heartbeat"))
        self._tasks.append(asyncio.create_task(self._watch_gap(), name="cluster-gap"))
        if self.cache is not None:
            self._tasks.append(asyncio.create_task(self._keep_trust(), name="cluster-trust"))
        if self.settings.runs_api:
            writer = self.snapshots.run(self.acme_owner, lambda: self.position)
            self._tasks.append(asyncio.create_task(writer, name="cluster-snapshots"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.settings.role in VISITOR_ROLES:
            # A clean stop: this edge is gone on purpose, not `unreachable` in the stats.
            with contextlib.suppress(BusUnavailable, ValueError):
                await self.bus.withdraw()
        await self.bus.close()

    # -- applying the stream --

    async def _on_event(self, event: Event) -> None:
        async with self._applying:
            if event.seq > self.position + 1:
                await self._check_gap(event.seq)
            if event.seq <= self.position:
                return  # a redelivery of what this node has, or in the snapshot restored
            await self._apply(event)

    async def _apply(self, event: Event) -> None:
        stored = None
        try:
            stored = self.replica.apply(event)
        except Refused as refusal:  # refused the same way on every node
            self.replica.skip(event.seq)
            self._refusals[event.seq] = refusal
            while len(self._refusals) > OUTCOMES_KEPT:
                self._refusals.popitem(last=False)
        except local.UNAPPLICABLE as exc:
            log.error(
                "event %d (%s) cannot be applied, quarantined: %r", event.seq, event.kind, exc
            )
            local.quarantine(self.replica.conn, event, exc)
            self.replica.skip(event.seq)
        if stored is not None and self.cache is not None:
            self.cache.catch_up()
            # Confirmed (below) once its objects are stored here (server/prefetcher.py);
            # a shield stores them as the edges' prefetches ask it.
            if not self.settings.is_shield:
                await self.cache.prefetch(stored)
        await self._stand_at(event.seq)

    async def _stand_at(self, seq: int) -> None:
        async with self._progress:
            self.position = seq
            self._progress.notify_all()
        if self.settings.runs_edge:
            await self.bus.report_applied(seq)

    async def _check_gap(self, seq: int) -> None:
        """Events before `seq` were not handed over: a malformed one (bus/jetstream.py
        skips it), or aged out of the stream while this node was cut off: then the newest
        snapshot is restored in place and the events between it and `seq` applied."""
        restored = await self._recover()
        if restored is None:
            return
        for between in range(restored + 1, seq):
            event = await self.bus.event(between)
            if event is not None:  # else gone or malformed (logged): as the consumer does
                await self._apply(event)

    async def _recover(self) -> int | None:
        """When events this node needs are gone from the stream (or were: missed_events),
        restore the newest usable snapshot in place; its sequence, or None. Called with
        `_applying` held."""
        first, last = await self.bus.stream_bounds()
        if not restore_due(self.position, first, self.missed_events):
            return None
        gap = needs_snapshot(self.position, first)
        if self.cache is not None:
            self.cache.signal.set_revalidate_all(True)
        had = self.position
        restored = await self.snapshots.restore_in_place(had, first, last)
        if restored is not None:
            await self._restored(restored)
        elif gap and not self.missed_events:
            log.error(
                "events %d to %d aged out of the stream before this node applied them and "
                "no snapshot covers them: every cached object is revalidated until one "
                "does (tried again every %.0f s)",
                had + 1,
                first - 1,
                RESTORE_RETRY,
            )
            self.missed_events = True
        return restored

    async def _restored(self, seq: int) -> None:
        """A snapshot at `seq` replaced the replica (and the cache's view of it)."""
        self.missed_events = False
        self._trust_lost = True
        self._wake.set()
        await self._stand_at(seq)

    async def _watch_gap(self) -> None:
        """Look for events gone before this node applied them even when none arrives (the
        stream may hold none after them), and, while some are not covered, try a
        snapshot again (one written since, or the store readable again)."""
        while True:
            await asyncio.sleep(RESTORE_RETRY)
            try:
                first, _ = await self.bus.stream_bounds()
                if not restore_due(self.position, first, self.missed_events):
                    continue
                async with self._applying:
                    await self._recover()
            except BusUnavailable:
                continue  # cut off: the bus logs it, and nothing is restored meanwhile
            except Exception:  # never the end of the task: the next try may succeed
                log.exception("snapshot not restored")

    async def _applied(self, seq: int, timeout: float) -> bool:
        async with self._progress:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._progress.wait_for(lambda: self.position >= seq)
            return self.position >= seq

    # -- the API's log --

    async def commit(
        self, zone_id: int, change: Proposal, confirm_within: float | None = None
    ) -> Committed:
        payload = change.to_payload()
        check_storable(payload)
        edges = self.bus.live_nodes(EDGE_ROLES)
        # An edge silent for longer than LIVE_WITHIN is not waited for, but it may be cut
        # off and still serving from its cache: it revalidates everything only once its own
        # silence passes max_bus_silence. Until then an answer lists it in `pending`.
        unsure = self.bus.live_nodes(EDGE_ROLES, LIVE_WITHIN + self.settings.max_bus_silence)
        try:
            event = await self.bus.publish(
                change.KIND, zone_id, payload, msg_id=uuid.uuid4().hex, retry_for=PUBLISH_RETRY
            )
        except BusUnavailable as exc:
            log.warning("commit %s: %s", change.KIND, exc)
            raise Refused(
                Reason.UNAVAILABLE,
                "the cluster's bus (NATS JetStream) is unreachable: the change is not "
                "confirmed and not applied here; try again",
            ) from None
        if not await self._applied(event.seq, APPLY_WAIT):
            raise Refused(
                Reason.UNAVAILABLE,
                f"the change is stored (event {event.seq}) but this node has not applied it "
                "yet: it will, once its bus connection recovers",
            )
        refusal = self._refusals.pop(event.seq, None)
        if refusal is not None:
            raise refusal
        if isinstance(change, CreateKey | RevokeKey | UpdateKey):
            return Committed(event.seq, None)  # nothing for the edge: no edge to wait for
        wait = self.settings.purge_wait if confirm_within is None else confirm_within
        pending = await self.bus.wait_applied(event.seq, edges, wait)
        pending |= self.bus.unconfirmed(event.seq, unsure)
        stored = local.get(self.replica.conn, event.seq)
        return Committed(event.seq, stored, pending=tuple(sorted(pending)))

    async def acme_owner(self) -> bool:
        """Whether this node orders the cluster's automatic certificates: the API node
        whose --node-id sorts first among those in the node registry (heard from in the
        last 15 s). Cut off from the bus, no node orders (nothing could be committed)."""
        try:
            nodes = await self.bus.nodes()
        except BusUnavailable:
            return False
        api = {str(n["node"]) for n in nodes if n.get("role") in ("api", "all")}
        return min(api | {self.settings.node_id}) == self.settings.node_id

    def lags(self) -> dict[str, int]:
        """Events each node heard from lately had not confirmed, as this node sees it."""
        applied = self.bus.applied()
        return {node: max(0, self.position - applied.get(node, 0)) for node in applied}

    # -- liveness and trust --

    async def _heartbeat(self) -> None:
        beats, announce_at = 0, 0.0
        while True:
            if self.settings.runs_edge:
                await self.bus.report_applied(self.position)
            if beats % REGISTRY_EVERY == 0:
                with contextlib.suppress(BusUnavailable):
                    await self.bus.heartbeat(self._registry_entry())
            if self.settings.role in VISITOR_ROLES and time.monotonic() >= announce_at:
                # The cluster knows of this edge for KNOWN_FOR after this (stats_exchange.py);
                # after a failure, tried again at the next heartbeat.
                with contextlib.suppress(BusUnavailable):
                    await self.bus.announce()
                    announce_at = time.monotonic() + ANNOUNCE_EVERY
            if self.settings.runs_edge and not self.settings.is_shield:
                with contextlib.suppress(BusUnavailable):
                    await self._tell_shields()
            beats += 1
            await asyncio.sleep(HEARTBEAT)

    def _registry_entry(self) -> dict[str, Any]:
        s = self.settings
        entry: dict[str, Any] = {
            "role": s.role,
            "applied": self.position,
            "quarantined": local.quarantined_count(self.replica.conn),
            "missed_events": self.missed_events,
            "version": __version__,
        }
        if s.runs_edge:
            entry["edge"] = advertised(s.edge_host, s.edge_port)
        if s.runs_edge and not s.is_shield:
            entry["shields"] = self._reach
        if s.is_shield:  # it has no API or /metrics of its own: `cluster status` shows it
            load = recent_load(read_snapshots(s.stats_dir), time.time())
            entry["load"] = dataclasses.asdict(load)
        if s.runs_api:
            entry["api"] = f"{s.api_host}:{s.api_port}"
        return entry

    async def _tell_shields(self) -> None:
        """Write the live shields for the workers (edge/shields.py) when they changed:
        those in the node registry that were heard from in the last LIVE_WITHIN s."""
        live = self.bus.live_nodes(SHIELD_ROLES)
        found = [
            ShieldNode(str(n["node"]), str(n["edge"]))
            for n in await self.bus.nodes()
            if n.get("role") == "shield" and n["node"] in live and n.get("edge")
        ]
        if found != self._shields:
            try:
                shields.write(self.settings.shields_path, found)
            except OSError as exc:  # a full disk: the workers keep the shields they know
                log.warning("shields not written: %s", exc)
                return
            self._shields = found
        times = await asyncio.gather(*(connect_time(s.address) for s in found))
        self._reach = {s.node: t for s, t in zip(found, times, strict=True)}

    def _on_reconnect(self) -> None:
        # Events may have been published while we were away: revalidate until caught up.
        if self.cache is not None:
            self.cache.signal.set_revalidate_all(True)
        self._wake.set()

    async def _keep_trust(self) -> None:
        """Clear `revalidate_all` once this node has applied the stream as it was when the
        connection (re)started; set it when cut off longer than `max_bus_silence`."""
        assert self.cache is not None
        signal = self.cache.signal
        caught_up: int | None = None  # the connection (by reconnect count) caught up on
        last_contact = time.monotonic()
        while True:
            if self._trust_lost:  # a snapshot was restored: caught up again from there
                caught_up, self._trust_lost = None, False
            reconnects = self.bus.reconnects
            if self.bus.connected:
                last_contact = time.monotonic()
                if caught_up != reconnects:
                    with contextlib.suppress(BusUnavailable):
                        target = await self.bus.last_stream_seq()
                        if (
                            await self._applied(target, LIVE_WITHIN)
                            and self.bus.reconnects == reconnects
                            and not self.missed_events
                        ):
                            caught_up = reconnects
                            signal.set_revalidate_all(False)
                            log.info("caught up with the stream at %d", target)
            elif time.monotonic() - last_contact > self.settings.max_bus_silence:
                if caught_up is not None:
                    log.warning(
                        "no contact with the bus for %.0f s: revalidating every object",
                        self.settings.max_bus_silence,
                    )
                caught_up = None
                signal.set_revalidate_all(True)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await self._wake.wait()
