"""Where the API's changes go: a node's event log, behind one small interface.

A route validates what it can, then `commit`s an event and answers from what comes back.
`LocalLog` is the single node: the event is applied to control.db at once (a refusal is
the error answer and stores nothing), then handed to the cache (`on_event`) before the
answer. The cluster's log (`server.cluster.ClusterNode`) publishes to JetStream and waits
until this node and every live edge applied it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pullzone.bus.events import Event, Proposal
from pullzone.config import Settings
from pullzone.control.replica import Replica
from pullzone.refusal import Reason, Refused
from pullzone.sqlite import connect
from pullzone.text import invalid_text

log = logging.getLogger("pullzone.api")


@dataclass(frozen=True, slots=True)
class Committed:
    seq: int
    event: Event | None  # what the node's log stored (None for key events)
    matched: int | None = None  # cached objects a selective purge matched, when known
    pending: tuple[str, ...] = ()  # live edges that had not confirmed it in time


class EventLog(Protocol):
    async def commit(
        self, zone_id: int, change: Proposal, confirm_within: float | None = None
    ) -> Committed:
        """Store and apply one event; raises Refused when it is refused or cannot be
        stored (then nothing changed). In a cluster, the edges have `confirm_within`
        seconds (default: --purge-wait) to confirm it before they are `pending`."""
        ...


def check_storable(payload: dict[str, Any]) -> None:
    """The last check before an event is committed: every node must be able to apply it,
    so text that is not valid Unicode never reaches the log, whatever route let it by."""
    not_text = invalid_text(payload, "the change")
    if not_text is not None:
        raise Refused(Reason.INVALID, not_text)


class LocalLog:
    def __init__(
        self, settings: Settings, on_event: Callable[[Event], Awaitable[int | None]]
    ) -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.replica = Replica(connect(settings.control_db, private=True), settings.edge_domain)
        self.on_event = on_event

    async def commit(
        self, zone_id: int, change: Proposal, confirm_within: float | None = None
    ) -> Committed:
        payload = change.to_payload()
        check_storable(payload)
        # One event loop writes this log, so nothing comes between reading the position
        # and storing the event after it.
        seq = self.replica.position + 1
        stored = self.replica.apply(Event(seq, change.KIND, zone_id, payload, time.time()))
        if stored is None:
            return Committed(seq, None)
        try:
            matched = await self.on_event(stored)
        except Exception:
            log.exception("event %s (%s) is stored but applying it failed", seq, change.KIND)
            raise Refused(
                Reason.FAILED,
                "the change was saved but applying it failed; it is applied with the next "
                "change or at restart (the server log has the details)",
            ) from None
        return Committed(seq, stored, matched)
