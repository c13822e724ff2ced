"""`/metrics` in the Prometheus text format (prometheus_client renders it).

The edge's figures are added up from its workers' snapshots at each scrape (a collector);
the API's own (purges) are prometheus_client metrics updated as purges are answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pullzone.control.stats import NodeStats
from pullzone.edge.stats import ORIGIN_BUCKETS
from pullzone.zones.plan import PurgePlan


def _zone(zone_id: int) -> str:
    return str(zone_id) if zone_id else "none"  # 0: the Host matched no zone


def _by_label(name: str, documentation: str, label: str, counts: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, n in sorted(counts.items()):
        family.add_metric([value], n)
    return family


class EdgeCollector(Collector):
    def __init__(
        self,
        stats: NodeStats,
        cluster_lags: Callable[[], dict[str, int]] | None,
        quarantined: Callable[[], int],
    ) -> None:
        self.stats = stats
        self.cluster_lags = cluster_lags
        self.quarantined = quarantined

    def collect(self) -> Iterator[Metric]:
        totals = self.stats.totals()
        requests = CounterMetricFamily(
            "pullzone_requests",
            "Edge responses by zone (none: no zone serves the Host) and X-Cache status.",
            labels=["zone", "cache_status"],
        )
        for (zone, status), n in sorted(totals.requests.items()):
            requests.add_metric([_zone(zone), status], n)
        yield requests
        sent = CounterMetricFamily(
            "pullzone_response_bytes", "Bytes the edge wrote, by zone.", labels=["zone"]
        )
        for zone, n in sorted(totals.bytes.items()):
            sent.add_metric([_zone(zone)], n)
        yield sent
        protocols = CounterMetricFamily(
            "pullzone_edge_protocol_requests",
            "Edge responses by protocol (http/1.1, h2) and scheme (http, https).",
            labels=["protocol", "scheme"],
        )
        for (protocol, scheme), n in sorted(totals.protocols.items()):
            protocols.add_metric([protocol, scheme], n)
        yield protocols

        origin_requests = CounterMetricFamily(
            "pullzone_origin_requests", "Requests to origins, by zone.", labels=["zone"]
        )
        origin_failures = CounterMetricFamily(
            "pullzone_origin_failures",
            "Origin requests that failed (unreachable, timed out, 5xx), by zone.",
            labels=["zone"],
        )
        latency = HistogramMetricFamily(
            "pullzone_origin_latency_seconds",
            "Time to the origin's response head, by zone.",
            labels=["zone"],
        )
        for zone, origin in sorted(totals.origin.items()):
            origin_requests.add_metric([str(zone)], origin.requests)
            origin_failures.add_metric([str(zone)], origin.failures)
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, ORIGIN_BUCKETS), "+Inf"), origin.buckets, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            latency.add_metric([str(zone)], buckets, origin.seconds)
        yield from (origin_requests, origin_failures, latency)
        yield _by_label(
            "pullzone_write_failures",
            "Best-effort writes that failed and were skipped (a full disk), by kind: lru, "
            "stats, access_log, janitor, stats_history.",
            "what",
            totals.write_failures,
        )

        yield _by_label(
            "pullzone_edge_faults",
            "What edge workers shed, by kind: connection_shed and connection_refused (at "
            "--worker-connections), header_timeout (408), out_of_files (503: no descriptor "
            "left; writes that found none are pullzone_write_failures), "
            "tls_handshake_failed (no certificate for the name, a bad ClientHello), "
            "tls_handshake_timeout (not done within 10 s), tls_handshake_shed (the oldest "
            "handshake closed for a new one, beyond 256 at once per worker), "
            "origin_failover (a request asked again of the zone's backup origin), "
            "shield_failover (an origin shield skipped: unreachable, stalled or behind), "
            "shield_stalled (one that stopped answering while a fill waited), "
            "shield_behind (on a shield: an edge's request refused, its event not applied "
            "within 1 s), "
            "proxy_header_invalid and proxy_header_timeout (--proxy-protocol: a connection "
            "closed without a valid PROXY header within 5 s).",
            "kind",
            totals.faults,
        )
        yield GaugeMetricFamily(
            "pullzone_edge_connections",
            "Client connections open at the edge workers' last snapshots.",
            value=totals.connections,
        )

        cache = self.stats.cache_totals()
        if cache is not None:
            yield GaugeMetricFamily(
                "pullzone_cache_bytes", "Bytes of cached objects on disk.", value=cache.bytes
            )
            yield GaugeMetricFamily(
                "pullzone_cache_objects", "Cached objects.", value=cache.objects
            )
            yield CounterMetricFamily(
                "pullzone_cache_evictions",
                "Objects evicted to keep the cache under --max-cache-size.",
                value=self.stats.evictions() + totals.evicted,
            )
            yield CounterMetricFamily(
                "pullzone_cache_invalidations",
                "Times an edge worker made stored objects unservable for the whole node"
                " (an unsafe method on a cached path, RFC 9111 §4.4; a 304 that made its"
                " object unstorable); each one empties every worker's memory cache.",
                value=self.stats.invalidations(),
            )
        yield _by_label(
            "pullzone_fills_not_stored",
            "Fills that stopped storing their body: too_big (over --max-object-size), "
            "no_room (the cache could not make room), abandoned (nobody read it any more).",
            "reason",
            totals.fills_not_stored,
        )
        yield _by_label(
            "pullzone_edge_refused",
            "Requests a zone block refused (403, or 410 for an expired signed URL), by "
            "block: securetoken, domainlock, ipaccess, geoblock, useragent.",
            "reason",
            totals.refused,
        )
        yield _by_label(
            "pullzone_compressions",
            "Compressed variants made by the edge (a zone's edge.compression), by content "
            "coding: once per stored object and coding for the node, never per request.",
            "encoding",
            totals.compressions,
        )
        yield _by_label(
            "pullzone_background_refreshes",
            "Background refreshes of stored objects (stale-while-revalidate, the zone's "
            "edge.prefresh), one per object for the node, by result: revalidated (304), "
            "fetched (stored anew), fresh (another worker had refreshed it), withdrawn, "
            "not_stored, failed (the stale copy stays).",
            "result",
            totals.refreshes,
        )
        yield _by_label(
            "pullzone_slices",
            "Slices of large objects (a zone's edge.lfo), by event: stored (a slice "
            "fetched by range and stored), served (a stored slice sent to a client), "
            "mismatched (a slice of another version of the object than its siblings: all "
            "of them dropped, the object fetched anew).",
            "event",
            totals.slices,
        )
        node_seq = self.stats.node_seq()
        if node_seq is not None:
            lag = GaugeMetricFamily(
                "pullzone_worker_event_lag",
                "Events the node applied that an edge worker has not yet (it applies them "
                "before answering its next request).",
                labels=["worker"],
            )
            for pid, applied in sorted(totals.worker_applied.items()):
                lag.add_metric([str(pid)], max(0, node_seq - applied))
            yield lag
        yield GaugeMetricFamily(
            "pullzone_events_quarantined",
            "Events of the log this node could not apply: set aside, with the events after "
            "them applied (each is logged, and a purge's history entry says why).",
            value=self.quarantined(),
        )
        if self.cluster_lags is not None:
            edges = GaugeMetricFamily(
                "pullzone_cluster_node_lag",
                "Events of the cluster's stream a node had not confirmed when last heard from.",
                labels=["node"],
            )
            for node, node_lag in sorted(self.cluster_lags().items()):
                edges.add_metric([node], node_lag)
            yield edges


class ApiMetrics:
    """The registry behind /metrics, and the API's own metrics in it."""

    def __init__(
        self,
        stats: NodeStats,
        quarantined: Callable[[], int],
        cluster_lags: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(EdgeCollector(stats, cluster_lags, quarantined))
        self.purges = Counter(
            "pullzone_purges",
            "Purges answered, by zone and kind (soft or hard; whole zone or selective).",
            labelnames=["zone", "kind"],
            registry=self.registry,
        )
        self.purge_seconds = Histogram(
            "pullzone_purge_seconds",
            "Time to answer a purge (stored and applied; in a cluster, confirmed by edges).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )

    def purged(self, zone_id: int, plan: PurgePlan, started: float) -> None:
        kind = ("hard" if plan.delete else "soft") + ("_all" if plan.whole_zone else "_selective")
        self.purges.labels(str(zone_id), kind).inc()
        self.purge_seconds.observe(time.perf_counter() - started)
