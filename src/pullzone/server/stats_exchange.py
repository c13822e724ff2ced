"""Cluster-wide `GET /v2/stats` (docs/cluster.md, Stats): the API node asks every edge for
its figures on `pullzone.stats.<node id>` (core NATS request/reply, not stored) and waits
at most ASK_WITHIN for all of them at once; each edge answers from its own counters and
its own history (control/stats_report.py). Edges that did not answer in time are
`unreachable`.

The edges asked are those heard from (bus/jetstream.py: every edge says what it applied
once a second; the node registry at start) in the last NODE_TTL seconds: an edge gone
longer is no longer listed at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

from pullzone.bus.jetstream import NODE_TTL, BusUnavailable, JetStreamBus
from pullzone.control.stats_query import StatsQuery
from pullzone.control.stats_report import LocalFigures, NodeReport
from pullzone.server.cluster import VISITOR_ROLES

log = logging.getLogger(__name__)

SUBJECT = "pullzone.stats."
ASK_WITHIN = 1.0  # seconds an API node waits for the edges' answers


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

    async def gather(self, query: StatsQuery) -> tuple[dict[str, NodeReport], list[str]]:
        """Every edge's report (this node's own without asking), and the edges that did
        not answer within ASK_WITHIN."""
        reports: dict[str, NodeReport] = {}
        if self.local is not None:
            reports[self.node_id] = await self.local.report(query)
        peers = sorted(self.bus.live_nodes(VISITOR_ROLES, within=NODE_TTL) - {self.node_id})
        request = json.dumps(query.to_json()).encode()
        answers = await asyncio.gather(*(self._ask(peer, request) for peer in peers))
        unreachable = []
        for peer, report in zip(peers, answers, strict=True):
            if report is None:
                unreachable.append(peer)
            else:
                reports[peer] = report
        return reports, unreachable

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
