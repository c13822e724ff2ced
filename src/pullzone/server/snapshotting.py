"""A cluster node's snapshots (docs/cluster.md, Retention and snapshots): starting from one
when the stream no longer holds what the node needs (or when the node has nothing yet),
restoring one in place when a running node finds events it needs gone, and writing them,
on the API node that also orders certificates (ClusterNode.acme_owner).

Writing is idempotent by sequence (bus/snapshot_store.py names objects after it), so two
nodes that both believe they are the writer for a moment write valid snapshots; the rule
only keeps the work on one node. A snapshot is written once the newest is
`snapshot_interval` old or SNAPSHOT_EVERY events behind, whichever comes first; with the
retention at least twice the interval (bus/retention.py), every event that ages out is
covered by a snapshot first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from pullzone import defaults
from pullzone.bus import snapshots
from pullzone.bus.jetstream import BusUnavailable, JetStreamBus
from pullzone.bus.snapshot_store import BUCKET, STORE_ERRORS, SnapshotStore, Stored
from pullzone.config import Settings
from pullzone.control.replica import Replica
from pullzone.server.cache_node import CacheNode
from pullzone.sqlite import connect

log = logging.getLogger("pullzone.cluster")

CHECK_EVERY = 5.0  # seconds between two looks at whether a snapshot is due, at most
BusErrors: tuple[type[Exception], ...] = (BusUnavailable, *STORE_ERRORS)


class SnapshotGap(Exception):
    """Events this node needs are gone from the stream and no snapshot covers them."""


def needs_snapshot(position: int, first: int) -> bool:
    """Whether events after `position` are gone: the stream starts later (`first`)."""
    return position + 1 < first


def restore_due(position: int, first: int, missed: bool) -> bool:
    """Whether a running node at `position` restores a snapshot: events after it are
    gone, or were (`missed`: it went on past them, no snapshot restored since)."""
    return missed or needs_snapshot(position, first)


def usable(
    stored: list[Stored], position: int, first: int, last: int, *, at_position: bool = False
) -> list[Stored]:
    """The snapshots a node at `position` may start from, newest first: newer than what it
    has (or as new, `at_position`: it applied events past some it missed), joining the
    stream (nothing between the snapshot and `first` is missing), and not past the
    stream's end (a snapshot of another stream)."""
    floor = position - 1 if at_position else position
    return [s for s in stored if s.seq > floor and first - 1 <= s.seq <= last]


def due(
    position: int,
    newest: Stored | None,
    now: float,
    interval: float,
    every: int = defaults.SNAPSHOT_EVERY,
) -> bool:
    """Whether the writer at `position` writes a snapshot now."""
    if newest is None:
        return position > 0
    if position <= newest.seq:
        return False
    return position - newest.seq >= every or now - newest.at >= interval


class NodeSnapshots:
    def __init__(
        self, settings: Settings, bus: JetStreamBus, replica: Replica, cache: CacheNode | None
    ) -> None:
        self.settings, self.bus, self.replica, self.cache = settings, bus, replica, cache
        self._store: SnapshotStore | None = None
        self._known: Stored | None = None  # the newest snapshot this node knows of

    async def store(self) -> SnapshotStore:
        if self._store is None:
            self._store = SnapshotStore(await self.bus.object_store(BUCKET))
        return self._store

    # -- starting from one --

    async def join(self, position: int, first: int, last: int) -> int | None:
        """Restore the newest usable snapshot when the stream lacks events after `position`
        or the node has none yet; its sequence, or None to read the stream from
        `position` on. SnapshotGap when the events are gone and no snapshot is usable."""
        gap = needs_snapshot(position, first)
        if not gap and (position > 0 or last == 0):
            return None
        candidates = usable(await (await self.store()).list(), position, first, last)
        snapshot, tried = await self._newest(candidates)
        if snapshot is not None:
            self._restore(snapshot, had=position, started=True)
            return snapshot.seq
        if gap:
            raise SnapshotGap(
                f"{self.settings.data_dir} has applied event {position}, but the cluster's "
                f"stream starts at {first} (older events are past --stream-retention) and "
                f"no snapshot covers them ({', '.join(tried) or 'none stored'}): start "
                "this node again once an API node has written a snapshot (every "
                "--snapshot-interval)"
            )
        if candidates:
            log.warning("no usable snapshot: reading the whole stream (%d events)", last)
        return None

    async def restore_in_place(self, position: int, first: int, last: int) -> int | None:
        """A running node missed events: restore the newest usable snapshot, one at
        `position` too (the node may have applied events past those it missed); its
        sequence, or None when none is usable or the store cannot be read."""
        try:
            stored = await (await self.store()).list()
        except BusErrors as exc:
            log.warning("snapshots not listed: %s", exc)
            return None
        candidates = usable(stored, position, first, last, at_position=True)
        snapshot, _ = await self._newest(candidates)
        if snapshot is None:
            return None
        self._restore(snapshot, had=position, started=False)
        return snapshot.seq

    async def _newest(
        self, candidates: list[Stored]
    ) -> tuple[snapshots.Snapshot | None, list[str]]:
        """The first of `candidates` that reads as a snapshot, and the names of those
        before it that did not."""
        store = await self.store()
        tried = []
        for stored in candidates:
            try:
                snapshot = snapshots.decode(await store.get(stored))
                if snapshot.seq != stored.seq:
                    raise snapshots.SnapshotError(f"it holds sequence {snapshot.seq}")
            except (snapshots.SnapshotError, *BusErrors) as exc:  # type: ignore[misc]
                log.error("snapshot %s is not usable, trying an older one: %s", stored.name, exc)
                tried.append(stored.name)
                continue
            return snapshot, tried
        return None, tried

    def _restore(self, snapshot: snapshots.Snapshot, had: int, *, started: bool) -> None:
        self.replica.restore(snapshot)
        log.warning(
            "%s snapshot %d (%d zones) taken by %s; this node had applied %d",
            "started from" if started else "restored",
            snapshot.seq,
            len(snapshot.rows["zones"]),
            snapshot.node,
            had,
        )
        if self.cache is not None:
            # What was purged meanwhile is unknown: every stored object is revalidated
            # before it is served again (a soft purge of every zone, cache/applier.py).
            self.cache.restart_at(snapshot.seq, snapshot.zone_ids())

    # -- writing them --

    async def run(self, owner: Callable[[], Awaitable[bool]], position: Callable[[], int]) -> None:
        """Write a snapshot whenever one is due and this node is the writer; forever."""
        interval = self.settings.snapshot_interval
        pause = max(0.05, min(CHECK_EVERY, interval / 4))
        while True:
            await asyncio.sleep(pause)
            try:
                if due(position(), self._known, time.time(), interval) and await owner():
                    await self.write_if_due(position())
            except BusErrors as exc:
                log.warning("snapshot: %s", exc)
            except Exception:  # never the end of the writer: the next try may succeed
                log.exception("snapshot: not written")

    async def write_if_due(self, position: int) -> int | None:
        """Write a snapshot unless another node wrote one recently enough; its sequence."""
        store = await self.store()
        stored = await store.list()
        self._known = stored[0] if stored else None
        if not due(position, self._known, time.time(), self.settings.snapshot_interval):
            return None
        started = time.monotonic()
        snapshot, data = await asyncio.to_thread(self._capture)
        await store.put(snapshot.seq, data)
        self._known = Stored("", snapshot.seq, len(data), snapshot.at)
        pruned = await store.prune()
        log.info(
            "snapshot %d written (%d bytes, %.0f ms; %d older removed)",
            snapshot.seq,
            len(data),
            (time.monotonic() - started) * 1000,
            pruned,
        )
        return snapshot.seq

    def _capture(self) -> tuple[snapshots.Snapshot, bytes]:
        # A connection of its own, in this thread: the event loop goes on applying events.
        with contextlib.closing(connect(self.settings.control_db, private=True)) as conn:
            snapshot = snapshots.capture(conn, self.settings.node_id)
        return snapshot, snapshots.encode(snapshot)
