"""The edge's request lifecycle, in the order Varnish names its states:

    catch up → route (Host → zone) → key → lookup → fresh? deliver
                                                  : fill (revalidate or fetch) → deliver

`handle` is that function. A HIT is answered synchronously; everything else returns an
awaitable that the connection runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex
from pullzone.cache.key import cache_key, key_hash, split_target
from pullzone.edge.access_log import AccessLog
from pullzone.edge.bounds import Limits
from pullzone.edge.deliver import Deliverer
from pullzone.edge.entry import Entry, MemoryCache
from pullzone.edge.fills import (
    Cached,
    Failed,
    Fetched,
    Filler,
    FillRequest,
    Passed,
    Revalidated,
    Withdrawn,
)
from pullzone.edge.http import Connection, Request
from pullzone.edge.origin import Origin, OriginError, forward_headers
from pullzone.edge.state import EdgeState, ZoneView
from pullzone.edge.stats import WorkerStats
from pullzone.spec.cache_control import parse_cache_control
from pullzone.spec.cdn_loop import looped
from pullzone.spec.freshness import stale_allowed_on_error
from pullzone.spec.headers import header_map
from pullzone.spec.invalidation import invalidated_paths
from pullzone.spec.uri import normalise, split_authority
from pullzone.spec.vary import vary_values

log = logging.getLogger(__name__)

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
# The route memo's bounds: at most this many routes (then it starts again), of targets
# no longer than this (a client sending endless distinct long URLs costs little memory).
MEMO_ROUTES = 4096
MEMO_TARGET_LIMIT = 512

# A worker records an object's last access for LRU eviction at most this often (as
# Varnish's lru_interval): eviction order needs no finer grain, and a busy working set
# would otherwise cost one SQLite update per object served per flush.
LRU_INTERVAL = 10.0

# zone, origin-form target, cache key
Route = tuple[ZoneView, str, str]


def request_host(request: Request) -> tuple[str, str] | None:
    """(host without port, origin-form target), or None when the target is unusable.

    An absolute-form target names its own authority (RFC 9112 §3.2.2); it is routed by
    that authority like any Host, so it can only reach a configured zone, never a
    host of the client's choosing.
    """
    target = request.target
    host = request.hmap.get("host", "")
    if not target.startswith("/"):
        scheme, sep, rest = target.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            return None
        host, slash, path = rest.partition("/")
        target = slash + path if slash else "/"
    host = split_authority(host)[0]
    # `name.` is the same fully qualified name as `name` (RFC 1034 §3.1).
    return host.lower().removesuffix("."), target


def _matching_variant(entries: list[Entry], request: Request) -> Entry | None:
    """RFC 9111 §4.1: the stored response whose Vary'd request headers match."""
    for entry in entries:
        names = entry.obj.vary_names
        if not names or vary_values(names, request.hmap) == entry.obj.vary_values:
            return entry
    return None


class Edge:
    def __init__(
        self,
        state: EdgeState,
        index: CacheIndex,
        bodies: BodyStore,
        origin: Origin,
        stats: WorkerStats,
        limits: Limits,
        access_log: AccessLog | None = None,
    ) -> None:
        self.state = state
        self.stats = stats
        self.access_log = access_log
        self.index = index
        self.bodies = bodies
        self.origin = origin
        self.memory = MemoryCache()
        self.filler = Filler(
            index, bodies, origin, lambda: state.applied, self._recheck, limits, stats
        )
        self.deliver = Deliverer(self.filler)
        self.accessed: dict[str, float] = {}
        # Routes by (Host field, request target), for the hosts map they were worked out
        # from: a hot object's next request skips parsing its target and host again.
        self._routes: dict[tuple[str | None, str], Route] = {}
        self._routes_for: dict[str, ZoneView] | None = None

    def handle(self, request: Request, conn: Connection) -> Awaitable[None] | None:
        state = self.state
        if state.catch_up():  # another worker changed stored objects (bus/signal.py)
            self.memory.clear()
        if self._routes_for is not state.hosts:  # zones changed: routes are worked out anew
            self._routes = {}
            self._routes_for = state.hosts
        route = self._routes.get((request.hmap.get("host"), request.target))
        if route is None:
            route = self._route(request, conn)
            if route is None:
                return None
        view, target, key = route
        conn.zone_id = view.zone.id
        if view.zone.disabled:
            self.deliver.error(conn, request, 403, "this zone is disabled")
            return None
        if request.method not in CACHEABLE_METHODS:
            if self._answered_here(request, conn):
                return None
            # Not cached, so not keyed: the origin gets the query whatever `querystring` says.
            full_target = (request_host(request) or ("", target))[1]
            return self.pass_through(view, request, full_target, conn)
        now = time.time()
        entry = self.lookup(view, key, request)
        if entry is not None and self._may_serve(entry, request, now):
            if now - entry.touched >= LRU_INTERVAL:
                entry.touched = now
                self.accessed[entry.obj.id] = now
            return self.deliver.entry(conn, request, entry, "HIT", now)
        if self._answered_here(request, conn):
            return None
        return self.fill(view, key, target, request, conn, entry)

    def _answered_here(self, request: Request, conn: Connection) -> bool:
        """Requests that must not reach the origin, answered by the edge; False for the
        rest (checked only on the way to the origin: a HIT never pays for it)."""
        hmap = request.hmap
        if looped(hmap.get("cdn-loop"), self.origin.cdn_id):
            # RFC 8586: the zone's origin leads back to this CDN; asking again would loop.
            self.deliver.error(conn, request, 508, "loop detected: the origin is this CDN")
            return True
        if request.method == "TRACE":
            # A TRACE echo would show the request's cookies and headers to scripts (cross-
            # site tracing); like most CDNs, the edge answers it itself, with a refusal.
            self.deliver.error(conn, request, 405, "TRACE is not supported")
            return True
        if request.method == "OPTIONS" and hmap.get("max-forwards", "").strip() == "0":
            # RFC 9110 §7.6.2: the last recipient answers for itself.
            self.deliver.options(conn, request)
            return True
        return False

    def _route(self, request: Request, conn: Connection) -> Route | None:
        """The zone, origin-form target and cache key of a request, kept for the next
        request with the same Host and target; None when an error answered it (unusable
        target, no zone for the host)."""
        routed = request_host(request)
        if routed is None:
            self.deliver.error(conn, request, 400, "request target not understood")
            return None
        host, target = routed
        target = normalise(target, "latin-1")  # one key per resource (RFC 3986 §6.2.2)
        view = self.state.route(host)
        if view is None:
            self.deliver.error(conn, request, 404, "no zone serves this host")
            return None
        path, query = split_target(target)
        keyed = view.zone.cache.querystring
        # A query that is not in the key is not sent either: an origin that reflects it
        # would otherwise have one client's query served to everyone in the shared object.
        route = (view, target if keyed else path, cache_key(view.zone.id, path, query, keyed))
        if len(request.target) <= MEMO_TARGET_LIMIT:
            if len(self._routes) >= MEMO_ROUTES:
                self._routes.clear()
            self._routes[(request.hmap.get("host"), request.target)] = route
        return route

    def finished(self, request: Request, conn: Connection) -> None:
        """A response is written (or cut short): count it, and log it."""
        self.stats.count(conn.zone_id, conn.xcache or "ABORTED", conn.sent)
        if self.access_log is not None:
            self.access_log.add(request, conn, time.time(), conn.elapsed())  # fails soft

    def lookup(self, view: ZoneView, key: str, request: Request) -> Entry | None:
        entries = self.memory.get(key)
        if entries:
            if len(entries) == 1:  # the usual case: one variant, often without Vary
                entry = entries[0]
                if entry.checked_seq >= view.changed_seq and (
                    not entry.obj.vary_names or _matching_variant(entries, request)
                ):
                    return entry
            elif all(e.checked_seq >= view.changed_seq for e in entries):
                variant = _matching_variant(entries, request)
                if variant is not None:
                    return variant
        # Not in memory, checked before the zone's last purge, or another variant that
        # another worker may have stored: the index decides.
        return _matching_variant(self._load(view, key), request)

    def _load(self, view: ZoneView, key: str) -> list[Entry]:
        """Entries for `key` from the index, with this zone's purges applied."""
        entries = []
        damaged = []
        for obj in self.index.variants(key_hash(key)):
            if obj.stored_seq < view.hard_all_seq:
                continue
            stale = obj.stale or obj.stored_seq < view.soft_all_seq
            entry = Entry(
                obj, view.zone.cache, self.bodies.object_path(obj.id), self.state.applied, stale
            )
            if entry.load_body():
                entries.append(entry)
            else:
                damaged.append(obj.id)
        if damaged:
            self.index.delete(damaged)
            self.bodies.remove(damaged)
        self.memory.put(key, entries)
        return entries

    def _recheck(self, fill: FillRequest) -> tuple[Entry | None, bool]:
        """The stored variant for `fill` as the index has it now, and whether it may be
        served as it is."""
        entry = _matching_variant(self._load(fill.view, fill.key), fill.request)
        return entry, entry is not None and self._may_serve(entry, fill.request, time.time())

    def _may_serve(self, entry: Entry, request: Request, now: float) -> bool:
        """Fresh for this request, and the node knows of every purge (README, Cluster)."""
        return not self.state.revalidate_all and entry.is_fresh(request.hmap, now)

    async def fill(
        self,
        view: ZoneView,
        key: str,
        target: str,
        request: Request,
        conn: Connection,
        stale: Entry | None,
    ) -> None:
        cc = parse_cache_control(request.hmap.get("cache-control"))
        if "only-if-cached" in cc:
            # RFC 9111 §5.2.1.7
            return await self.deliver.error_async(conn, request, 504, "not in cache")
        if "no-store" in cc:
            return await self.pass_through(view, request, target, conn)
        path, query = split_target(target)
        job = FillRequest(view, key, key_hash(key), path, query, target, request, conn.peer, stale)
        outcome = await self.filler.obtain(job)
        # What was stored when the fill began (a purge may have removed it since the
        # lookup): a fetch that replaces it is EXPIRED, one with nothing stored a MISS.
        status = "MISS" if job.stale is None else "EXPIRED"
        if isinstance(outcome, Cached):
            self.accessed[outcome.entry.obj.id] = time.time()
            await self.deliver.entry_async(conn, request, outcome.entry, "HIT", time.time())
        elif isinstance(outcome, Fetched):
            await self.deliver.fill(conn, request, outcome, view.zone.cache, status)
        elif isinstance(outcome, Revalidated):
            self.memory.drop(key)
            entry = self.lookup(view, key, request)
            if entry is None:  # hard-purged or evicted meanwhile: fetch it whole
                await self.fill(view, key, target, request, conn, None)
            else:
                await self.deliver.entry_async(conn, request, entry, "REVALIDATED", time.time())
        elif isinstance(outcome, Withdrawn):
            self._invalidated(outcome.generation)
            await self._serve_withdrawn(view, request, conn, outcome)
        elif isinstance(outcome, Passed):
            if outcome.response is None:
                await self.pass_through(view, request, target, conn, for_fill=True)
            else:
                await self.deliver.origin_response(
                    conn, request, outcome.response, "MISS", view.zone.cache
                )
        elif isinstance(outcome, Failed):
            if (
                stale is not None
                and view.zone.cache.usestale
                and stale_allowed_on_error(stale.hmap, honour_origin=stale.honour_origin)
            ):
                # Stale on error, as stale-if-error / proxy_cache_use_stale do.
                await self.deliver.entry_async(conn, request, stale, "STALE", time.time())
            else:
                await self.deliver.error_async(conn, request, outcome.status, "origin failed")

    async def _serve_withdrawn(
        self, view: ZoneView, request: Request, conn: Connection, withdrawn: Withdrawn
    ) -> None:
        """The revalidated body with the 304's headers, to this client alone; the body
        file goes once it is delivered (a worker already streaming it holds it open)."""
        obj = withdrawn.obj
        path = self.bodies.object_path(obj.id)
        entry = Entry(obj, view.zone.cache, path, self.state.applied, stale=True)
        try:
            await self.deliver.entry_async(conn, request, entry, "REVALIDATED", time.time())
        finally:
            self.bodies.remove([obj.id])

    async def pass_through(
        self,
        view: ZoneView,
        request: Request,
        target: str,
        conn: Connection,
        *,
        for_fill: bool = False,
    ) -> None:
        """Send the request to the origin uncached and relay the answer (X-Cache: BYPASS)."""
        zone = view.zone
        headers = forward_headers(
            request.headers,
            request.hmap,
            zone,
            conn.peer,
            for_fill=False,
            cdn_id=self.origin.cdn_id,
        )
        method = "GET" if for_fill and request.method == "HEAD" else request.method
        try:
            response = await self.origin.request(zone, method, target, headers, request.body)
        except OriginError as exc:
            return await self.deliver.error_async(conn, request, exc.status, "origin failed")
        if request.method not in CACHEABLE_METHODS:
            self._invalidate(view, request, target, response.status, response.raw_headers)
        await self.deliver.origin_response(
            conn, request, response, "MISS" if for_fill else "BYPASS", zone.cache
        )

    def _invalidate(
        self,
        view: ZoneView,
        request: Request,
        target: str,
        status: int,
        raw_headers: tuple[tuple[bytes, bytes], ...],
    ) -> None:
        """RFC 9111 §4.4: an unsafe request that succeeded makes its URI's objects stale."""
        host = (request_host(request) or ("", ""))[0]
        rhmap = header_map((n.decode("latin-1"), v.decode("latin-1")) for n, v in raw_headers)
        paths = [  # spelled as the stored objects' keys are (RFC 3986 §6.2.2)
            split_target(normalise(uri, "latin-1"))[0]
            for uri in invalidated_paths(request.method, status, target, rhmap, host)
        ]
        self._invalidated(self.index.mark_stale(view.zone.id, paths))

    def _invalidated(self, generation: int) -> None:
        """Stored objects changed in the index (`generation` > 0): every worker of the
        node, this one first, forgets what it holds in memory before its next request.

        The change is in the shared index already; what the other workers lack is the
        news. They get it through the node's shared signal (bus/signal.py), which they
        read before each request: no message to the supervisor, no event in the log
        (whose sequence numbers belong to the bus). Rare (an unsafe method on a cached
        path, a 304 that makes its object unstorable), so a whole memory cache is
        dropped rather than tracking which keys changed: each key is read from the index
        again when next asked for. Published before the clear, so a change another
        worker published meanwhile is read too.
        """
        if generation:
            self.state.publish_invalidation(generation)
            self.memory.clear()

    def take_accesses(self) -> dict[str, float]:
        """Objects served since the last call, with when (for LRU eviction)."""
        accessed, self.accessed = self.accessed, {}
        return accessed
