"""The cluster event log: NATS JetStream, the multi-node twin of `bus.local` (README, Cluster).

One stream, PULLZONE_EVENTS, holds every event; its sequence is the log's sequence and a
PubAck is what "durably stored" means. Zones and keys are events too, ordered with the
purges that depend on them (a node rebuilds both by reading the stream); heartbeats go in a
bucket whose entries expire. Every node reads the stream through a durable pull consumer
and says what it has applied on a core subject, so a purge can wait for every live edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from pullzone.bus.events import Event
from pullzone.bus.retention import retention_limits, update_retention

log = logging.getLogger("pullzone.bus")

STREAM = "PULLZONE_EVENTS"
EVENTS = "pullzone.events."
APPLIED = "pullzone.applied."
NODES = "pullzone_nodes"
CLUSTER = "pullzone_cluster"  # what the cluster's nodes share for good (its secret)
# The edges the cluster knows of (server/stats_exchange.py): each visitor node's entry,
# rewritten every few minutes, expires KNOWN_FOR after its last write, or is deleted when
# the node stops cleanly.
KNOWN = "pullzone_known"
KNOWN_FOR = 24 * 3600.0
NODE_TTL = 15.0  # a node whose registry entry is this old is gone (cluster status)
LIVE_WITHIN = 5.0  # a node not heard from (applied or heartbeat) for this long is not waited for
ACK_WAIT = 30.0  # an unacked delivery is redelivered after this long
FETCH_WAIT = 1.0
RECONNECT_GRACE = 1.5  # a publish retried no longer once disconnected this long
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_KIND = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_NATS_ERRORS = (nats.errors.Error, asyncio.TimeoutError, OSError)
_KV_REMOVED = frozenset({"DEL", "PURGE"})  # a key-value entry's KV-Operation when deleted

T = TypeVar("T")
Handler = Callable[[Event], Awaitable[None]]


class BusUnavailable(Exception):
    """The bus did not answer in time: nothing is known to be stored."""


def _decode(seq: int, data: bytes) -> Event:
    body = json.loads(data)
    return Event(seq, body["kind"], int(body["zone_id"]), body["payload"], float(body["at"]))


@dataclass
class _Consumer:
    durable: str
    handler: Handler
    last: int  # the stream sequence handed to the handler last, in this process
    sub: JetStreamContext.PullSubscription | None = None


class JetStreamBus:
    def __init__(self, nc: Client, node_id: str, role: str, replicas: int, timeout: float) -> None:
        self.node_id, self.role, self.replicas, self.timeout = node_id, role, replicas, timeout
        # The stream's max_age in seconds (0: events kept forever); None: as it is.
        self.retention: float | None = None
        self._nc = nc
        self._js = nc.jetstream(timeout=timeout)
        self._jsm = nc.jetstream(timeout=max(5.0, timeout))  # stream and consumer management
        self._kv: dict[str, KeyValue] = {}
        self._applied: dict[str, int] = {}
        self._heard: dict[str, tuple[str, float]] = {}  # node: (role, monotonic time)
        self._applied_changed = asyncio.Condition()
        self.reconnect_listeners: list[Callable[[], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @classmethod
    async def connect(
        cls,
        servers: list[str],
        node_id: str,
        *,
        role: str = "all",
        replicas: int = 1,
        observe: bool = False,
        connect_timeout: float = 2.0,
        timeout: float = 2.0,
        ping_interval: float = 5.0,
        node_ttl: float = NODE_TTL,
        retention: float | None = None,
    ) -> JetStreamBus:
        """Connect (each server tried twice, else BusUnavailable), then reconnect forever;
        create the stream and the node registry unless they exist (or `observe`). The
        stream keeps events `retention` seconds (0: forever), an existing one updated to
        it (None: left as it is)."""
        if not _TOKEN.match(node_id):
            raise ValueError(f"node id {node_id!r}: letters, digits, '-' and '_' only")
        nc = Client()
        listeners: list[Callable[[], None]] = []

        async def on_error(exc: Exception) -> None:
            log.debug("nats: %s %s", type(exc).__name__, exc)

        async def on_disconnected() -> None:
            if not nc.is_closed:
                log.warning("bus: disconnected; reconnecting")

        async def on_reconnected() -> None:
            url = nc.connected_url
            log.warning("bus: reconnected to %s", url.netloc if url else "?")
            for listener in listeners:
                listener()

        options: dict[str, Any] = dict(
            servers=servers,
            name=f"pullzone-{node_id}",
            connect_timeout=connect_timeout,
            reconnect_time_wait=0.5,
            max_reconnect_attempts=1,  # for the first connect; forever once connected
            ping_interval=ping_interval,
            max_outstanding_pings=2,
            pending_size=0,  # while disconnected, publishing fails instead of queueing
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        )
        try:
            await nc.connect(**options)
        except _NATS_ERRORS as exc:
            await nc.close()
            raise BusUnavailable(f"cannot connect to {servers}: {exc!r}") from exc
        nc.options["max_reconnect_attempts"] = -1
        bus = cls(nc, node_id, role, replicas, timeout)
        bus.retention = retention
        bus.reconnect_listeners = listeners
        try:
            if observe:  # tools: read what nodes made, create nothing
                with bus._unavailable("the node registry"):
                    bus._kv[NODES] = await bus._jsm.key_value(NODES)
            else:
                await nc.subscribe(APPLIED + "*", cb=bus._on_applied)
                await bus._ensure_stream()
                await bus._ensure_bucket(NODES, node_ttl)
                await bus._ensure_bucket(CLUSTER, None)
                await bus._ensure_bucket(KNOWN, KNOWN_FOR)
        except BaseException:
            await nc.close()
            raise
        return bus

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    @property
    def reconnects(self) -> int:
        return int(self._nc.stats["reconnects"])

    @contextlib.contextmanager
    def _unavailable(self, what: str) -> Iterator[None]:
        """Fail at once when disconnected; any NATS error or timeout is BusUnavailable."""
        if not self.connected:
            raise BusUnavailable(f"{what}: not connected")
        try:
            yield
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"{what}: {type(exc).__name__} {exc}".strip()) from exc

    async def close(self) -> None:
        # The flag ends a consumer loop even where a library call swallowed the
        # cancellation; the wait is bounded so closing never hangs.
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks.clear()
        if self.connected:
            with contextlib.suppress(*_NATS_ERRORS):
                await self._nc.flush(timeout=1)  # the last acks
        await self._nc.close()

    # -- setup: idempotent, and tolerant of other nodes creating the same things at once --

    async def _ensure_stream(self) -> None:
        config = api.StreamConfig(
            name=STREAM,
            subjects=[EVENTS + ">"],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            num_replicas=self.replicas,
            **retention_limits(self.retention or 0.0),
        )
        info = await self._idempotent(
            STREAM, lambda: self._jsm.add_stream(config), lambda: self._jsm.stream_info(STREAM)
        )
        if self.retention is not None:
            await update_retention(self._jsm, info, self.retention)

    async def _ensure_bucket(self, bucket: str, ttl: float | None) -> None:
        config = api.KeyValueConfig(
            bucket=bucket, history=1, ttl=ttl, replicas=self.replicas, storage=api.StorageType.FILE
        )
        self._kv[bucket] = await self._idempotent(
            bucket,
            lambda: self._jsm.create_key_value(config),
            lambda: self._jsm.key_value(bucket),
        )

    async def _idempotent(
        self, name: str, create: Callable[[], Awaitable[T]], existing: Callable[[], Awaitable[T]]
    ) -> T:
        """Create `name`, or use it as it is if it exists (made by another node, perhaps
        with other settings); retry while a forming cluster has no JetStream leader."""
        deadline = time.monotonic() + 10.0
        while True:
            try:
                return await create()
            except _NATS_ERRORS as exc:
                error: BaseException = exc
            try:
                found = await existing()
                level = logging.WARNING if "already in use" in str(error) else logging.INFO
                log.log(level, "bus: using the existing %s (%s)", name, error)
                return found
            except _NATS_ERRORS as exc:
                error = exc
            if time.monotonic() > deadline:
                raise BusUnavailable(f"create {name}: {error!r}") from error
            await asyncio.sleep(0.25)

    # -- the event stream --

    async def publish(
        self,
        kind: str,
        zone_id: int,
        payload: dict[str, Any],
        *,
        msg_id: str | None = None,
        retry_for: float = 0.0,
    ) -> Event:
        """Store one event; its `seq` is the stream's sequence from the PubAck. A repeated
        `msg_id` (within the duplicate window, bus/retention.py) is stored once and answers
        the first sequence, which makes retrying safe: with a `msg_id`, a publish that
        failed is tried again for up to `retry_for` seconds (a stream leader being elected
        after a server died takes a few), unless the connection stays down for
        RECONNECT_GRACE."""
        if not _KIND.match(kind):
            raise ValueError(f"event kind {kind!r}")
        at = time.time()
        body = {"kind": kind, "zone_id": zone_id, "payload": payload, "at": at}
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        deadline = time.monotonic() + (retry_for if msg_id else 0.0)
        delay, down_since = 0.05, None
        while True:
            try:
                with self._unavailable("publish"):
                    ack = await self._js.publish(
                        EVENTS + kind, data, timeout=self.timeout, stream=STREAM, headers=headers
                    )
                return Event(seq=ack.seq, kind=kind, zone_id=zone_id, payload=payload, at=at)
            except BusUnavailable:
                now = time.monotonic()
                down_since = None if self.connected else (down_since or now)
                if now + delay > deadline or (
                    down_since is not None and now - down_since > RECONNECT_GRACE
                ):
                    raise
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 2)

    async def stream_bounds(self) -> tuple[int, int]:
        """The stream's first and last sequences (first = last + 1 when it holds none)."""
        with self._unavailable("stream info"):
            info = await self._js.stream_info(STREAM)
        return int(info.state.first_seq), int(info.state.last_seq)

    async def object_store(self, bucket: str) -> ObjectStore:
        """The Object Store `bucket`, created unless it exists."""
        config = api.ObjectStoreConfig(
            bucket=bucket, replicas=self.replicas, storage=api.StorageType.FILE
        )
        with self._unavailable(f"object store {bucket}"):
            return await self._idempotent(
                bucket,
                lambda: self._jsm.create_object_store(bucket, config),
                lambda: self._jsm.object_store(bucket),
            )

    async def last_stream_seq(self) -> int:
        return (await self.stream_bounds())[1]

    async def consume(
        self,
        durable: str,
        handler: Handler,
        *,
        start_seq: int | None = None,
        restart: bool = False,
    ) -> None:
        """Hand every event to `handler`, in stream order, one at a time, in a background task
        until close(). A new durable starts at `start_seq` (default 1); an existing one where
        it acked, but at `start_seq` when given and it acked more (or less, with `restart`:
        the caller restored a snapshot, what is before it may be gone): the caller holds
        what it has, and the handler skips what is delivered again."""
        if not _TOKEN.match(durable):
            raise ValueError(f"durable name {durable!r}")
        c = _Consumer(durable, handler, last=max(start_seq or 1, 1) - 1)
        with self._unavailable(f"consumer {durable}"):
            info = await self._bind(c)
            floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
            if start_seq is not None and (floor > c.last or (restart and floor != c.last)):
                # The durable is past what the caller holds (its data was lost or replaced):
                # start it again where the caller is, or those events would never come.
                log.warning("bus: consumer %s acked %d; starting at %d", durable, floor, c.last + 1)
                await self._jsm.delete_consumer(STREAM, durable)
                if c.sub is not None:
                    await c.sub.unsubscribe()
                    c.sub = None
                await self._bind(c)
            else:
                c.last = floor  # behind the caller: redeliveries the handler skips
        self._tasks.append(asyncio.create_task(self._consume(c), name=f"bus-{durable}"))

    async def _bind(self, c: _Consumer) -> api.ConsumerInfo:
        """Bind to the durable, creating it (from c.last + 1) if it is missing."""
        info: api.ConsumerInfo
        try:
            info = await self._jsm.consumer_info(STREAM, c.durable)
        except nats.js.errors.NotFoundError:
            config = api.ConsumerConfig(
                durable_name=c.durable,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT,
                filter_subject=EVENTS + ">",
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=c.last + 1,
            )
            info = await self._jsm.add_consumer(STREAM, config)
            if c.sub is not None:
                log.warning("bus: consumer %s was gone; created again", c.durable)
                with contextlib.suppress(*_NATS_ERRORS):
                    await c.sub.unsubscribe()
                c.sub = None
        if c.sub is None:
            c.sub = await self._js.pull_subscribe_bind(durable=c.durable, stream=STREAM)
        return info

    async def _sync(self, c: _Consumer) -> None:
        """Check the durable, and get what it delivered that this process did not handle
        (lost in a reconnect, or sent to a process that died) again now: the server alone
        would redeliver it only after ACK_WAIT, after newer events."""
        info = await self._bind(c)
        delivered = info.delivered.stream_seq if info.delivered else 0
        if delivered <= c.last:
            return
        first = int((await self._js.stream_info(STREAM)).state.first_seq)
        if first > c.last + 1:
            # Aged out (past the stream's max_age) before this process got them: waiting
            # for them would never end. The handler sees the gap (server/cluster.py).
            log.warning(
                "bus: consumer %s: events %d to %d are no longer in the stream",
                c.durable,
                c.last + 1,
                first - 1,
            )
            c.last = first - 1
        if delivered <= c.last or await self._reset(c):
            return
        for seq in range(c.last + 1, delivered + 1):  # servers before 2.14: read the stream
            await self._handle_missing(c, seq)

    async def _reset(self, c: _Consumer) -> bool:
        """Move the durable back to c.last + 1, so it delivers from there at once (ADR-60,
        `$JS.API.CONSUMER.RESET`, nats-server 2.14+); False where that is not possible."""
        version = self._nc.connected_server_version
        if (version.major, version.minor) < (2, 14):
            return False
        request = json.dumps({"seq": c.last + 1}).encode()
        subject = f"$JS.API.CONSUMER.RESET.{STREAM}.{c.durable}"
        try:
            reply = await self._nc.request(subject, request, timeout=self.timeout)
            error = json.loads(reply.data).get("error")
        except (*_NATS_ERRORS, ValueError) as exc:
            error = repr(exc)
        if error:
            log.warning("bus: consumer %s: reset to %d: %s", c.durable, c.last + 1, error)
        return not error

    async def _consume(self, c: _Consumer) -> None:
        failures, idle, sync, reconnects = 0, 0, True, self._nc.stats["reconnects"]
        while not self._closing:
            if failures:
                await asyncio.sleep(min(5.0, 0.2 * 2 ** (failures - 1)))
            if not self.connected:
                await asyncio.sleep(0.1)
                continue
            try:
                if sync or idle >= 10 or reconnects != self._nc.stats["reconnects"]:
                    reconnects = self._nc.stats["reconnects"]
                    await self._sync(c)
                    sync, idle = False, 0
                assert c.sub is not None
                msgs = await c.sub.fetch(batch=64, timeout=FETCH_WAIT)
            except TimeoutError:  # nothing new, or a leader being elected (nats-py raises
                # its own TimeoutError or asyncio's, depending on where the wait ended)
                idle += 1
                continue
            except _NATS_ERRORS as exc:
                log.warning("bus: consumer %s: %s %s", c.durable, type(exc).__name__, exc)
                failures, sync = failures + 1, True
                continue
            except Exception:
                log.exception("bus: consumer %s: event %d not applied", c.durable, c.last + 1)
                failures, sync = failures + 1, True
                continue
            idle = 0
            if await self._deliver(c, msgs):
                failures = 0
            else:
                failures, sync = failures + 1, True

    async def _deliver(self, c: _Consumer, msgs: list[Msg]) -> bool:
        """Hand over a fetched batch in order and ack each event; False at a gap (earlier
        deliveries were lost: the next sync gets them) or when the handler failed."""
        for i, msg in enumerate(msgs):
            seq = msg.metadata.sequence.stream
            if seq > c.last + 1:
                log.info("bus: consumer %s: got %d after %d", c.durable, seq, c.last)
                return False
            if seq == c.last + 1:
                try:
                    await self._handle(c, seq, msg.data)
                except Exception:
                    log.exception("bus: consumer %s: event %d not applied", c.durable, seq)
                    for rest in msgs[i:]:
                        with contextlib.suppress(*_NATS_ERRORS):
                            await rest.nak()
                    return False
            with contextlib.suppress(*_NATS_ERRORS):
                # Acked when this returns, so a restart resumes right after it; a lost ack
                # means one redelivery, skipped as seq <= c.last.
                await msg.ack_sync(timeout=self.timeout)
        return True

    async def event(self, seq: int) -> Event | None:
        """The stream's event `seq`, read directly; None when it is gone or malformed."""
        with self._unavailable(f"event {seq}"):
            try:
                raw = await self._jsm.get_msg(STREAM, seq)
            except nats.js.errors.NotFoundError:
                log.warning("bus: event %d is no longer in the stream", seq)
                return None
        try:
            return _decode(seq, raw.data or b"")
        except (ValueError, KeyError, TypeError):
            log.error("bus: event %d is malformed, skipped: %r", seq, raw.data)
            return None

    async def _handle_missing(self, c: _Consumer, seq: int) -> None:
        try:
            raw = await self._jsm.get_msg(STREAM, seq)
        except nats.js.errors.NotFoundError:
            log.warning("bus: consumer %s: event %d is no longer in the stream", c.durable, seq)
            c.last = seq
            return
        assert raw.data is not None
        await self._handle(c, seq, raw.data)

    async def _handle(self, c: _Consumer, seq: int, data: bytes) -> None:
        try:
            event = _decode(seq, data)
        except (ValueError, KeyError, TypeError):
            log.error("bus: consumer %s: event %d is malformed, skipped: %r", c.durable, seq, data)
        else:
            await c.handler(event)
        c.last = seq

    # -- applied confirmations (core NATS, not stored); also each node's sign of life --

    async def _on_applied(self, msg: Msg) -> None:
        try:
            body = json.loads(msg.data)
            node, seq, role = str(body["node"]), int(body["seq"]), str(body["role"])
        except (ValueError, KeyError, TypeError):
            log.warning("bus: malformed applied confirmation %r", msg.data)
            return
        self._heard[node] = (role, time.monotonic())
        await self._note_applied(node, seq)

    async def _note_applied(self, node: str, seq: int) -> None:
        async with self._applied_changed:
            if seq > self._applied.get(node, 0):
                self._applied[node] = seq
                self._applied_changed.notify_all()

    async def report_applied(self, seq: int) -> bool:
        """Tell every node this one has applied the log up to `seq` (and is alive);
        False if not sent."""
        await self._note_applied(self.node_id, seq)
        self._heard[self.node_id] = (self.role, time.monotonic())
        data = json.dumps({"node": self.node_id, "seq": seq, "role": self.role}).encode()
        try:
            await self._nc.publish(APPLIED + self.node_id, data)
        except _NATS_ERRORS:
            return False
        return True

    def applied(self) -> dict[str, int]:
        """What each node heard from in the last LIVE_WITHIN seconds confirmed last."""
        live = self.live_nodes(frozenset(role for role, _ in self._heard.values()))
        return {node: self._applied.get(node, 0) for node in live}

    def heard_of(self, node: str, role: str, age: float) -> None:
        """Count `node` as heard from `age` seconds ago (from the registry, at start)."""
        if node not in self._heard:
            self._heard[node] = (role, time.monotonic() - age)

    def heard(self, roles: frozenset[str]) -> dict[str, float]:
        """When (unix time) each node with one of `roles` was last heard from by this
        process (or, at start, seen in the node registry)."""
        offset = time.time() - time.monotonic()
        return {node: at + offset for node, (role, at) in self._heard.items() if role in roles}

    def live_nodes(self, roles: frozenset[str], within: float = LIVE_WITHIN) -> set[str]:
        """Nodes with one of `roles` heard from in the last `within` seconds."""
        since = time.monotonic() - within
        return {node for node, (role, at) in self._heard.items() if role in roles and at >= since}

    def unconfirmed(self, seq: int, nodes: set[str]) -> set[str]:
        """The nodes of `nodes` that have not confirmed `seq`."""
        return {node for node in nodes if self._applied.get(node, 0) < seq}

    async def wait_applied(self, seq: int, nodes: set[str], timeout: float = 2.0) -> set[str]:
        """Wait until every node in `nodes` confirmed `seq`; returns those that did not."""
        async with self._applied_changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._applied_changed.wait_for(lambda: not self.unconfirmed(seq, nodes))
            return self.unconfirmed(seq, nodes)

    # -- requests between nodes (core NATS, not stored: server/stats_exchange.py) --

    async def respond(self, subject: str, answer: Callable[[bytes], Awaitable[bytes]]) -> None:
        """Answer every request on `subject` with `answer(request)` (resubscribed by the
        client after a reconnect)."""

        async def on_request(msg: Msg) -> None:
            reply = await answer(msg.data)
            with contextlib.suppress(*_NATS_ERRORS):
                await msg.respond(reply)

        with self._unavailable(f"subscribe {subject}"):
            await self._nc.subscribe(subject, cb=on_request)

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """The answer to a request (BusUnavailable: none within `timeout`, or no one
        listens on `subject`)."""
        with self._unavailable(f"request {subject}"):
            reply = await self._nc.request(subject, data, timeout=timeout)
        return bytes(reply.data)

    # -- the node registry --

    async def heartbeat(self, info: dict[str, Any]) -> None:
        """Say this node is alive (`info`: role, applied, ...) for the next NODE_TTL s."""
        await self.kv_put(NODES, self.node_id, {**info, "node": self.node_id, "at": time.time()})

    async def nodes(self) -> list[dict[str, Any]]:
        """The nodes whose last heartbeat is younger than NODE_TTL (the bucket's max age)."""
        items = await self.kv_items(NODES)
        return [items[key] for key in sorted(items)]

    # -- the edges the cluster knows of (KNOWN) --

    async def announce(self) -> None:
        """Say this node is one of the cluster's for the next KNOWN_FOR seconds."""
        entry = {"node": self.node_id, "role": self.role, "at": time.time()}
        await self.kv_put(KNOWN, self.node_id, entry)

    async def withdraw(self) -> None:
        """Say this node left the cluster on purpose (it stopped cleanly)."""
        kv = self._bucket(KNOWN)
        with self._unavailable(f"delete {KNOWN}/{self.node_id}"):
            await kv.delete(self.node_id)

    async def known_nodes(self, roles: frozenset[str]) -> dict[str, float]:
        """The nodes with one of `roles` that announced themselves in the last KNOWN_FOR
        seconds and did not withdraw: when (unix time) each did last."""
        return {
            str(entry["node"]): float(entry["at"])
            for entry in (await self.kv_items(KNOWN)).values()
            if entry.get("role") in roles
        }

    # -- key-value helpers (values are JSON objects) --

    def _bucket(self, bucket: str) -> KeyValue:
        try:
            return self._kv[bucket]
        except KeyError:
            raise ValueError(f"unknown bucket {bucket!r}") from None

    async def kv_put(self, bucket: str, key: str, value: dict[str, Any]) -> int:
        kv = self._bucket(bucket)
        with self._unavailable(f"put {bucket}/{key}"):
            return await kv.put(key, json.dumps(value, separators=(",", ":")).encode())

    async def kv_first(self, bucket: str, key: str, value: dict[str, Any]) -> dict[str, Any]:
        """`value` stored under `key` unless a value is there already: the stored one
        (the first node to ask decides it for every node). Retried while a forming
        cluster has no leader for the bucket yet, as `_idempotent` does."""
        kv = self._bucket(bucket)
        deadline = time.monotonic() + 10.0
        while True:
            try:
                with self._unavailable(f"create {bucket}/{key}"):
                    with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                        await kv.create(key, json.dumps(value, separators=(",", ":")).encode())
                    entry = await kv.get(key)
            except BusUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)
                continue
            stored: dict[str, Any] = json.loads(entry.value or b"{}")
            return stored

    async def kv_items(self, bucket: str) -> dict[str, dict[str, Any]]:
        """Every key's latest value. Read to the entry the server says is the last
        (`delta` 0), deletions included: nats-py's end marker (None) alone may come before
        the entries, when the consumer's info says nothing is pending because the server
        has sent them but they are not read yet (a listing that came back empty under
        load: the KNOWN bucket then named no silent edge)."""
        kv = self._bucket(bucket)
        items: dict[str, dict[str, Any]] = {}
        with self._unavailable(f"list {bucket}"):
            watcher = await kv.watchall()
            # The latest entry of each key, then None; nats-py leaves these two untyped.
            updates: Callable[..., Awaitable[KeyValue.Entry | None]] = watcher.updates
            stop: Callable[[], Awaitable[None]] = watcher.stop
            try:
                while True:
                    entry = await updates(timeout=self.timeout)
                    if entry is None:
                        if (await kv.status()).values == 0:
                            return items  # the bucket is empty
                        continue  # the early marker: the entries follow
                    if entry.operation in _KV_REMOVED:
                        items.pop(entry.key, None)
                    elif entry.value:
                        items[entry.key] = json.loads(entry.value)
                    if not entry.delta:
                        return items
            finally:
                with contextlib.suppress(*_NATS_ERRORS):
                    await stop()
