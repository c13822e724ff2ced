"""Cluster-wide `GET /v2/stats` (docs/cluster.md, Stats): the API node asks every edge for
its figures on `pullzone.stats.<node id>` (core NATS request/reply, not stored) and waits
at most ASK_WITHIN for all of them at once; each edge answers from its own counters and
its own history (control/stats_report.py). Edges that did not answer in time are
`unreachable`.

The edges asked are those heard from (bus/jetstream.py: every edge says what it applied
once a second; the node registry at start) in the last NODE_TTL seconds. An edge silent
for longer is not asked (it would only cost the wait), but listed as `unreachable` with
when it was last heard of, as long as the cluster knows of it (`select`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Mapping

from pullzone.bus.jetstream import KNOWN_FOR, NODE_TTL, BusUnavailable, JetStreamBus
from pullzone.control.stats_query import StatsQuery
from pullzone.control.stats_report import LocalFigures, NodeReport
from pullzone.server.cluster import VISITOR_ROLES

log = logging.getLogger(__name__)

SUBJECT = "pullzone.stats."
ASK_WITHIN = 1.0  # seconds an API node waits for the edges' answers


def select(
    heard: Mapping[str, float], known: Mapping[str, float] | None, now: float
) -> tuple[list[str], dict[str, float]]:
    """The edges to ask, and those silent: each with when (unix time) it was last heard of.

    `heard`: when this process last heard from each edge (its signs of life since this
    node started, and the node registry's entries at start); `known`: the KNOWN bucket
    (bus/jetstream.py: each edge announces itself there every few minutes, the entry
    expires KNOWN_FOR after the last, and an edge that stops cleanly deletes it), or None
    when it cannot be read.

    Why the bucket decides which silent edges are listed: it is the only list that
    outlives this process (an API node restarted after an edge died still lists it; the
    node registry forgets an edge NODE_TTL after its last heartbeat) and that an edge
    leaves on purpose (a clean stop: it is no longer listed anywhere at once). This
    node's memory is the fallback when the bucket is unreadable (NATS down: then every
    other edge is unreachable anyway, and the memory still names them). Either way an
    edge is listed no longer than KNOWN_FOR (24 h) after it was last heard of: one
    removed without a clean stop (its machine gone) drops out by itself.
    """
    ask = sorted(node for node, at in heard.items() if now - at <= NODE_TTL)
    silent: dict[str, float] = {}
    for node, at in (heard if known is None else known).items():
        last = max(at, heard.get(node, at))
        if node not in ask and now - last <= KNOWN_FOR:
            silent[node] = last
    return ask, silent


class StatsExchange:
    def __init__(self, bus: JetStreamBus, node_id: str, local: LocalFigures | None) -> None:
        """`local`: this node's figures, None on a node without an edge (it answers
        nothing, and is not one of the nodes of an answer)."""
        self.bus = bus
        self.node_id = node_id
        self.local = local

    async def start(self) -> None:
        if self.local is not None:
            await self.bus.respond(SUBJECT + self.node_id, self._answer)

    async def _answer(self, request: bytes) -> bytes:
        assert self.local is not None
        try:
            query = StatsQuery.from_json(json.loads(request))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("malformed stats request %r: %s", request[:200], exc)
            return b""  # not a report: the asker counts this node unreachable
        try:
            return (await self.local.report(query)).to_bytes()
        except (OSError, sqlite3.Error) as exc:  # its history unreadable: say nothing
            log.warning("stats request not answered: %s", exc)
            return b""

    async def gather(self, query: StatsQuery) -> tuple[dict[str, NodeReport], dict[str, float]]:
        """Every edge's report (this node's own without asking), and the edges that did
        not answer within ASK_WITHIN or were not asked (silent: `select`), by node id in
        order, with when each was last heard of (unix time)."""
        reports: dict[str, NodeReport] = {}
        if self.local is not None:
            reports[self.node_id] = await self.local.report(query)
        heard = self.bus.heard(VISITOR_ROLES)
        try:
            known: dict[str, float] | None = await self.bus.known_nodes(VISITOR_ROLES)
        except BusUnavailable:
            known = None
        heard.pop(self.node_id, None)
        if known is not None:
            known.pop(self.node_id, None)
        peers, unreachable = select(heard, known, time.time())
        request = json.dumps(query.to_json()).encode()
        answers = await asyncio.gather(*(self._ask(peer, request) for peer in peers))
        for peer, report in zip(peers, answers, strict=True):
            if report is None:
                unreachable[peer] = heard[peer]
            else:
                reports[peer] = report
        return reports, dict(sorted(unreachable.items()))

    async def _ask(self, node: str, request: bytes) -> NodeReport | None:
        try:
            return NodeReport.from_bytes(
                await self.bus.request(SUBJECT + node, request, ASK_WITHIN)
            )
        except BusUnavailable:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("node %s: not a stats report: %s", node, exc)
            return None
