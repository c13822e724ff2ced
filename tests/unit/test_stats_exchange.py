"""How an API node gathers a cluster's figures (server/stats_exchange.py), without sockets:
a stand-in bus hands each request to the exchange that subscribed to its subject, and one
edge never answers (as after a kill: the request times out)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from pullzone.bus.jetstream import BusUnavailable, JetStreamBus
from pullzone.control.stats_history import MINUTE, Window
from pullzone.control.stats_query import Span, StatsQuery
from pullzone.control.stats_report import LocalFigures, NodeReport
from pullzone.server.stats_exchange import SUBJECT, StatsExchange

QUERY = StatsQuery(Span(1_800_000_000, 1_800_003_600, MINUTE), (7,))


class Bus:
    """Subjects to answers, and the nodes heard from."""

    def __init__(self, heard: set[str]) -> None:
        self.heard = heard
        self.subjects: dict[str, Callable[[bytes], Awaitable[bytes]]] = {}
        self.asked: list[tuple[str, float]] = []

    async def respond(self, subject: str, answer: Callable[[bytes], Awaitable[bytes]]) -> None:
        self.subjects[subject] = answer

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        self.asked.append((subject, timeout))
        if subject not in self.subjects:
            raise BusUnavailable("timed out")
        return await self.subjects[subject](data)

    def live_nodes(self, roles: frozenset[str], within: float) -> set[str]:
        assert roles == {"edge", "all"} and within == 15.0
        return self.heard


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
    assert unreachable == ["edge-3"]
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
    assert list(reports) == ["edge-1"] and unreachable == []


async def test_a_malformed_request_or_answer_counts_as_no_answer() -> None:
    bus = Bus({"edge-1", "edge-2"})
    await exchange(bus, "edge-1", Figures(report(1))).start()

    async def garbage(data: bytes) -> bytes:
        return b"not a report"

    await bus.respond(SUBJECT + "edge-2", garbage)
    assert await bus.subjects[SUBJECT + "edge-1"](b'{"start": "soon"}') == b""
    reports, unreachable = await exchange(bus, "api", None).gather(QUERY)
    assert list(reports) == ["edge-1"] and unreachable == ["edge-2"]
