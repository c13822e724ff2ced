"""How an API node gathers a cluster's figures (server/stats_exchange.py), without sockets:
a stand-in bus hands each request to the exchange that subscribed to its subject, and one
edge never answers (as after a kill: the request times out). Which edges are asked and
which are listed as silent (`select`) is a pure function of when each was heard of."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import cast

import pytest

from pullzone.bus.jetstream import BusUnavailable, JetStreamBus
from pullzone.control.stats_history import MINUTE, Window
from pullzone.control.stats_query import Span, StatsQuery
from pullzone.control.stats_report import LocalFigures, NodeReport
from pullzone.server.stats_exchange import SUBJECT, StatsExchange, select

QUERY = StatsQuery(Span(1_800_000_000, 1_800_003_600, MINUTE), (7,))


class Bus:
    """Subjects to answers, the nodes heard from (`heard`: just now, `ago`: seconds ago),
    and the KNOWN bucket (None: unreadable)."""

    def __init__(
        self,
        heard: set[str],
        ago: dict[str, float] | None = None,
        known: dict[str, float] | None = None,
    ) -> None:
        now = time.time()
        self.last = {node: now for node in heard} | {n: now - a for n, a in (ago or {}).items()}
        self.known = known
        self.subjects: dict[str, Callable[[bytes], Awaitable[bytes]]] = {}
        self.asked: list[tuple[str, float]] = []

    async def respond(self, subject: str, answer: Callable[[bytes], Awaitable[bytes]]) -> None:
        self.subjects[subject] = answer

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        self.asked.append((subject, timeout))
        if subject not in self.subjects:
            raise BusUnavailable("timed out")
        return await self.subjects[subject](data)

    def heard(self, roles: frozenset[str]) -> dict[str, float]:
        assert roles == {"edge", "all"}
        return dict(self.last)

    async def known_nodes(self, roles: frozenset[str]) -> dict[str, float]:
        assert roles == {"edge", "all"}
        if self.known is None:
            raise BusUnavailable("list pullzone_known: not connected")
        return dict(self.known)


class Figures(LocalFigures):
    """A node whose report is fixed; records what it was asked."""

    def __init__(self, report: NodeReport) -> None:
        self.fixed = report
        self.queries: list[StatsQuery] = []

    async def report(self, query: StatsQuery) -> NodeReport:
        self.queries.append(query)
        return self.fixed


def report(hits: int) -> NodeReport:
    history = Window({(1_800_000_000, "HIT"): (hits, hits)}, {(7, "HIT"): (hits, hits)})
    return NodeReport(1_700_000_000.0, {(7, "HIT"): (hits, hits)}, history=history)


def exchange(bus: Bus, node: str, local: LocalFigures | None) -> StatsExchange:
    return StatsExchange(cast(JetStreamBus, bus), node, local)


async def test_the_api_node_has_every_edges_report_and_the_silent_ones() -> None:
    bus = Bus({"api-1", "edge-1", "edge-2", "edge-3"})
    edge_1, edge_2 = Figures(report(1)), Figures(report(2))
    await exchange(bus, "edge-1", edge_1).start()
    await exchange(bus, "edge-2", edge_2).start()  # edge-3 was killed: it never answers
    own = Figures(report(4))
    api = exchange(bus, "api-1", own)
    reports, unreachable = await api.gather(QUERY)
    assert reports == {"api-1": report(4), "edge-1": report(1), "edge-2": report(2)}
    assert list(unreachable) == ["edge-3"]
    assert time.time() - unreachable["edge-3"] < 5  # heard from just now, then no answer
    assert edge_1.queries == edge_2.queries == own.queries == [QUERY]  # the span, as asked
    # The API node answers for itself without the bus; each edge is asked within 1 s.
    assert sorted(bus.asked) == [(SUBJECT + n, 1.0) for n in ("edge-1", "edge-2", "edge-3")]


async def test_an_api_only_node_is_no_node_of_the_answer_and_answers_nothing() -> None:
    bus = Bus({"edge-1"})
    await exchange(bus, "edge-1", Figures(report(1))).start()
    api = exchange(bus, "api", None)
    await api.start()
    assert set(bus.subjects) == {SUBJECT + "edge-1"}
    reports, unreachable = await api.gather(QUERY)
    assert list(reports) == ["edge-1"] and unreachable == {}


async def test_a_malformed_request_or_answer_counts_as_no_answer() -> None:
    bus = Bus({"edge-1", "edge-2"})
    await exchange(bus, "edge-1", Figures(report(1))).start()

    async def garbage(data: bytes) -> bytes:
        return b"not a report"

    await bus.respond(SUBJECT + "edge-2", garbage)
    assert await bus.subjects[SUBJECT + "edge-1"](b'{"start": "soon"}') == b""
    reports, unreachable = await exchange(bus, "api", None).gather(QUERY)
    assert list(reports) == ["edge-1"] and list(unreachable) == ["edge-2"]


NOW = 1_800_000_000.0
DAY = 24 * 3600.0


def test_edges_heard_from_in_the_last_15_s_are_asked_the_others_are_listed_silent() -> None:
    heard = {"edge-1": NOW - 1, "edge-2": NOW - 15, "edge-3": NOW - 15.5, "edge-4": NOW - 600}
    known = {n: NOW - 200 for n in ("edge-1", "edge-2", "edge-3", "edge-4")}
    ask, silent = select(heard, known, NOW)
    assert ask == ["edge-1", "edge-2"]
    # When each was last heard of: the later of this node's memory and the bucket.
    assert silent == {"edge-3": NOW - 15.5, "edge-4": NOW - 200}


def test_the_bucket_names_silent_edges_this_node_never_heard_from() -> None:
    # An API node restarted after edge-2 died: only the KNOWN bucket remembers it.
    ask, silent = select({"edge-1": NOW}, {"edge-1": NOW - 30, "edge-2": NOW - 40}, NOW)
    assert ask == ["edge-1"] and silent == {"edge-2": NOW - 40}


def test_an_edge_that_stopped_cleanly_is_not_listed() -> None:
    # It withdrew from the bucket: this node's memory of it does not list it.
    ask, silent = select({"edge-1": NOW, "edge-2": NOW - 60}, {"edge-1": NOW}, NOW)
    assert ask == ["edge-1"] and silent == {}


def test_without_the_bucket_this_nodes_memory_lists_the_silent_edges() -> None:
    ask, silent = select({"edge-1": NOW - 2, "edge-2": NOW - 60}, None, NOW)
    assert ask == ["edge-1"] and silent == {"edge-2": NOW - 60}


@pytest.mark.parametrize("known", [None, {"edge-1": NOW - DAY - 1}])
def test_an_edge_silent_for_more_than_a_day_is_no_longer_listed(
    known: dict[str, float] | None,
) -> None:
    heard = {"edge-1": NOW - DAY - 1, "edge-2": NOW - DAY + 1}
    assert select(heard, known, NOW) == ([], {"edge-2": NOW - DAY + 1} if known is None else {})


async def test_a_silent_edge_is_listed_without_being_asked() -> None:
    bus = Bus({"edge-1"}, ago={"edge-2": 20.0})
    now = time.time()
    bus.known = {"edge-1": now - 30, "edge-2": now - 100, "edge-3": now - 3600}
    await exchange(bus, "edge-1", Figures(report(1))).start()
    reports, unreachable = await exchange(bus, "api", None).gather(QUERY)
    assert list(reports) == ["edge-1"] and list(unreachable) == ["edge-2", "edge-3"]
    assert now - unreachable["edge-2"] == pytest.approx(20, abs=1)
    assert now - unreachable["edge-3"] == pytest.approx(3600, abs=1)
    assert [subject for subject, _ in bus.asked] == [SUBJECT + "edge-1"]  # no wait for them


async def test_with_the_bus_down_every_other_edge_heard_of_is_unreachable() -> None:
    bus = Bus(set(), ago={"edge-1": 3.0, "edge-2": 40.0}, known=None)
    own = Figures(report(4))
    reports, unreachable = await exchange(bus, "all-1", own).gather(QUERY)
    assert list(reports) == ["all-1"] and list(unreachable) == ["edge-1", "edge-2"]
