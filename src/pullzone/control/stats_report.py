"""One node's figures for `GET /v2/stats` (docs/operations.md, Stats), as a `NodeReport`: its
counters since it started, the last hour per minute from the workers' snapshots, what
its cache holds, and its history over the span asked for. A cluster's API node gets one
from every edge (server/stats_exchange.py), adds them up (`total`) and renders each the
same way (`render`): the zone rows, `series` and `history` of the answer.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pullzone.control.stats import SERVED_FROM_CACHE, NodeStats
from pullzone.control.stats_history import ORIGIN, Figures, Window, add, cumulative
from pullzone.control.stats_query import StatsQuery
from pullzone.control.stats_recorder import Recorder
from pullzone.edge.stats import MINUTES, read_snapshots
from pullzone.zones.model import Zone


@dataclass
class NodeReport:
    since: float  # when the node started counting
    live: Figures = field(default_factory=dict)  # (zone, status): since `since`
    minutes: dict[tuple[int, str], int] = field(default_factory=dict)  # (minute start, status)
    cache: dict[int, tuple[int, int]] = field(default_factory=dict)  # zone: (objects, bytes)
    history: Window = field(default_factory=Window)

    def to_bytes(self) -> bytes:
        """Compressed JSON (rows of one node's figures repeat a lot: ~10 times smaller)."""
        data = {
            "since": self.since,
            "live": [[z, s, n, b] for (z, s), (n, b) in self.live.items()],
            "minutes": [[m, s, n] for (m, s), n in self.minutes.items()],
            "cache": [[z, n, b] for z, (n, b) in self.cache.items()],
            "history": self.history.to_json(),
        }
        return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 1)

    @classmethod
    def from_bytes(cls, raw: bytes) -> NodeReport:
        """The report `to_bytes` made (ValueError, KeyError or TypeError if it is not one)."""
        try:
            data = json.loads(zlib.decompress(raw))
        except zlib.error as exc:
            raise ValueError(f"not a stats report: {exc}") from None
        return cls(
            since=float(data["since"]),
            live={(int(z), str(s)): (int(n), int(b)) for z, s, n, b in data["live"]},
            minutes={(int(m), str(s)): int(n) for m, s, n in data["minutes"]},
            cache={int(z): (int(n), int(b)) for z, n, b in data["cache"]},
            history=Window.from_json(data["history"]),
        )


def total(reports: Iterable[NodeReport], since: float) -> NodeReport:
    """The reports added up (`since`: the earliest, or this one when there are none)."""
    reports = list(reports)
    out = NodeReport(min([r.since for r in reports], default=since))
    for report in reports:
        add(out.live, report.live)
        for key, n in report.minutes.items():
            out.minutes[key] = out.minutes.get(key, 0) + n
        add(out.cache, report.cache)
        out.history.add(report.history)
    return out


class LocalFigures:
    """This node's report: its workers' snapshots and cache (`stats`), and its history
    (`recorder`; None on a node without an edge, which has no traffic)."""

    def __init__(self, stats: NodeStats, recorder: Recorder | None) -> None:
        self.stats = stats
        self.recorder = recorder

    async def report(self, query: StatsQuery) -> NodeReport:
        zones = set(query.zones)
        snapshots = read_snapshots(self.stats.directory)
        counters = cumulative(snapshots)
        report = NodeReport(
            self.stats.since, {key: v for key, v in counters.items() if key[0] in zones}
        )
        for snap in snapshots:
            for m in snap.minutes:
                if m.zone_id in zones:
                    key = (m.minute * 60, m.status)
                    report.minutes[key] = report.minutes.get(key, 0) + m.requests
        held = self.stats.cache_by_zone()
        report.cache = {z: (u.objects, u.bytes) for z, u in held.items() if z in zones}
        if self.recorder is not None:
            report.history = await asyncio.to_thread(
                self.recorder.window, query.span, zones, counters
            )
        return report


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _zone_figures(by_status: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """requests, hits, hit_ratio, bytes and origin_requests of one zone's figures."""
    served = {s: v for s, v in by_status.items() if s != ORIGIN}
    requests = sum(n for n, _ in served.values())
    hits = sum(served.get(s, (0, 0))[0] for s in SERVED_FROM_CACHE)
    return {
        "requests": requests,
        "hits": hits,
        "hit_ratio": round(hits / requests, 4) if requests else None,
        "bytes": sum(b for _, b in served.values()),
        "origin_requests": by_status.get(ORIGIN, (0, 0))[0],
    }


def _by_zone(figures: Figures) -> dict[int, dict[str, tuple[int, int]]]:
    zones: dict[int, dict[str, tuple[int, int]]] = {}
    for (zone_id, status), value in figures.items():
        zones.setdefault(zone_id, {})[status] = value
    return zones


def render(
    report: NodeReport, zones: Sequence[Zone], edge_domain: str, query: StatsQuery, now: float
) -> dict[str, Any]:
    """The answer's figures of one node (or of the cluster): `since`, `zones`, `series`
    and `history`."""
    live = _by_zone(report.live)
    rows = []
    for z in zones:
        objects, held = report.cache.get(z.id, (0, 0))
        rows.append(
            {
                "id": z.id,
                "name": z.name,
                "fqdn": z.fqdn(edge_domain),
                **_zone_figures(live.get(z.id, {})),
                "cache_bytes": held,
                "cache_objects": objects,
            }
        )
    first = (int(now) // 60 - MINUTES + 1) * 60
    statuses: dict[str, list[int]] = {}
    for (minute, status), n in report.minutes.items():
        if first <= minute < first + MINUTES * 60:
            statuses.setdefault(status, [0] * MINUTES)[(minute - first) // 60] += n
    return {
        "since": iso(report.since),
        "zones": rows,
        "series": {"start": first, "step": 60, "statuses": statuses},
        "history": _history(report.history, zones, query),
    }


def _history(window: Window, zones: Sequence[Zone], query: StatsQuery) -> dict[str, Any]:
    span = query.span
    requests, sent, origin = ([0] * span.buckets for _ in range(3))
    statuses: dict[str, list[int]] = {}
    for (at, status), (n, b) in window.series.items():
        i = (at - span.start) // span.step
        if not 0 <= i < span.buckets:
            continue
        if status == ORIGIN:
            origin[i] += n
            continue
        requests[i] += n
        sent[i] += b
        statuses.setdefault(status, [0] * span.buckets)[i] += n
    by_zone = _by_zone(window.zones)
    return {
        "start": span.start,
        "end": span.end,
        "step": span.step,
        "requests": requests,
        "bytes": sent,
        "origin_requests": origin,
        "statuses": statuses,
        "zones": [{"id": z.id, **_zone_figures(by_zone.get(z.id, {}))} for z in zones],
    }
