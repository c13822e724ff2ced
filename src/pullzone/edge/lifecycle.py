"""The edge's request lifecycle, in the order Varnish names its states:

    catch up → route (Host → zone) → key → lookup → fresh? deliver
                                                  : fill (revalidate or fetch) → deliver

`handle` is that function. A HIT is answered synchronously; everything else returns an
awaitable that the connection runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex
from pullzone.cache.key import cache_key, key_hash, split_target
from pullzone.edge import securetoken
from pullzone.edge.access_log import AccessLog
from pullzone.edge.bounds import Limits
from pullzone.edge.client import Network, client_address
from pullzone.edge.compress import Compressor
from pullzone.edge.decisions import (
    ACME_CHALLENGE_PREFIX,
    CACHEABLE_METHODS,
    DELIVER_HIT,
    FETCH_MISS,
    PREFLIGHT,
    REVALIDATE,
    Answer,
    DeliverRefreshing,
    Fail,
    Fetch,
    Pass,
    Redirect,
    Revalidate,
    ServeStale,
    on_challenge,
    on_request,
)
from pullzone.edge.deliver import Deliverer
from pullzone.edge.entry import Entry
from pullzone.edge.fills import Filler, FillRequest
from pullzone.edge.http import PLAIN_LABEL, Exchange, Request
from pullzone.edge.internal import SEQ_HEADER, SHIELD_REFUSED, is_internal
from pullzone.edge.labels import NotStored, XCache
from pullzone.edge.lookup import Lookup
from pullzone.edge.origin import Origin, OriginError, forward_headers
from pullzone.edge.outcomes import (
    Cached,
    Fetched,
    Outcome,
    Passed,
    Revalidated,
    Whole,
    Withdrawn,
)
from pullzone.edge.pacing import Paced
from pullzone.edge.progress import FillSignals
from pullzone.edge.rules import refusal
from pullzone.edge.slicer import Slicer
from pullzone.edge.state import EdgeState, ZoneView
from pullzone.edge.stats import WorkerStats
from pullzone.edge.writer import shield_outcome
from pullzone.spec.headers import header_map
from pullzone.spec.invalidation import invalidated_paths
from pullzone.spec.uri import normalise, split_authority

log = logging.getLogger(__name__)

# The route memo's bounds: at most this many routes (then it starts again), of targets
# no longer than this (a client sending endless distinct long URLs costs little memory).
MEMO_ROUTES = 4096
MEMO_TARGET_LIMIT = 512

# A worker records an object's last access for LRU eviction at most this often (as
# Varnish's lru_interval): eviction order needs no finer grain, and a busy working set
# would otherwise cost one SQLite update per object served per flush.
LRU_INTERVAL = 10.0

# An origin shield waits this long at most for the event an edge has applied, checking
# every SHIELD_POLL s (an mmap read), before it refuses the request (SHIELD_REFUSED).
SHIELD_CATCH_UP = 1.0
SHIELD_POLL = 0.002
SHIELD_ONLY = "this node is an origin shield: it answers the cluster's edges only"
SHIELD_BEHIND = "this origin shield has not applied the event log as far as the edge"
SHIELD_BEHIND_FIELD = SHIELD_REFUSED.encode() + b": behind\r\n"

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


class Edge:
    """The request lifecycle: route, look up, decide (decisions.on_request), then execute
    the decision: deliver, fill, pass, or answer."""

    def __init__(
        self,
        state: EdgeState,
        index: CacheIndex,
        bodies: BodyStore,
        origin: Origin,
        stats: WorkerStats,
        limits: Limits,
        access_log: AccessLog | None = None,
        https_port: int = 443,
        trusted_proxies: tuple[Network, ...] = (),
        internal_token: str = "",
    ) -> None:
        self.state = state
        # The node's own requests (a prefetch) pass the visitors' rules (edge/internal.py).
        self.internal_token = internal_token
        # --trusted-proxies: whose X-Forwarded-For names the client (edge/client.py).
        self.trusted_proxies = trusted_proxies
        self.stats = stats
        self.access_log = access_log
        self.index = index
        self.bodies = bodies
        self.origin = origin
        self.lookup = Lookup(state, index, bodies)
        signals = FillSignals()
        self.filler = Filler(self.lookup, origin, limits, stats, signals)
        # https_port: the HTTPS listener's (--edge-tls), where `ssl.redirect` sends to.
        self.deliver = Deliverer(signals, https_port)
        self.accessed: dict[str, float] = {}
        self.compressor = Compressor(
            self.lookup, self.deliver, self.filler.budget, stats, self._accessed, LRU_INTERVAL
        )
        self.slicer = Slicer(
            self.lookup, self.filler, self.deliver, stats, self._accessed, LRU_INTERVAL
        )
        # Routes by (Host field, request target), for the hosts map they were worked out
        # from: a hot object's next request skips parsing its target and host again.
        self._routes: dict[tuple[str | None, str], Route] = {}
        self._routes_for: dict[str, ZoneView] | None = None

    def _accessed(self, object_id: str, at: float) -> None:
        self.accessed[object_id] = at  # `accessed` is swapped for a new dict on each flush

    def catch_up(self) -> None:
        """What `handle` does first, for the TLS listener's SNI callback (edge/tls.py)."""
        if self.state.catch_up():
            self.lookup.memory.clear()

    def handle(self, request: Request, conn: Exchange) -> Awaitable[None] | None:
        state = self.state
        if self.trusted_proxies:
            xff = request.hmap.get("x-forwarded-for")
            conn.client = client_address(conn.peer, xff, self.trusted_proxies)
        if state.catch_up():  # another worker changed stored objects (bus/signal.py)
            self.lookup.memory.clear()
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
        if (
            view.pace is not None  # the zone's bwlimit
            and not isinstance(conn, Paced)
            and not is_internal(request.hmap, self.internal_token)
        ):
            paced = Paced(conn, view.pace)
            return paced.run(self.handle(request, paced))
        now = time.time()
        if view.rules and not is_internal(request.hmap, self.internal_token):
            refused = refusal(view.rules, request, conn.client, now)
            if refused is not None:
                self.stats.refused[refused.reason] = self.stats.refused.get(refused.reason, 0) + 1
                self.deliver.error(conn, request, refused.status, refused.message)
                return None
        stored = None
        if request.method in CACHEABLE_METHODS:
            stored = self.lookup.find(view, key, request.hmap)
        decision = on_request(
            request, view.zone, stored, now, state.revalidate_all, self.origin.cdn_id
        )
        if decision is DELIVER_HIT and stored is not None:  # the hot path: one identity test
            if stored.status == 206:  # the first slice of a large object (edge/slicing.py)
                return self.sliced(view, key, target, request, conn, stored)
            # `_stored` inlined: the call alone cost 570 instructions (0.9 %) per HIT
            # (bench/hit_instructions.py).
            if now - stored.touched >= LRU_INTERVAL:
                stored.touched = now
                self.accessed[stored.obj.id] = now
            if view.zone.edge.compression:  # br or gzip as the client accepts
                return self.compressor.hit(conn, request, view, key, stored, decision.xcache, now)
            return self.deliver.entry(conn, request, stored, decision.xcache, now)
        if decision is PREFLIGHT:
            self.deliver.preflight(conn, request)
            return None
        if isinstance(decision, Answer):
            self.deliver.answer(conn, request, decision)
            return None
        if isinstance(decision, Redirect):
            if is_internal(request.hmap, self.internal_token) and request.scheme == "http":
                request.scheme = "https"  # stores what visitors are served over https
                return self.handle(request, conn)
            self.deliver.redirect(conn, request, decision)
            return None
        if isinstance(decision, Pass):
            if decision.reason is NotStored.METHOD:
                # Not cached, so not keyed: the origin gets the query whatever
                # `querystring` says.
                target = (request_host(request) or ("", target))[1]
                if view.zone.securetoken.enabled:
                    target = securetoken.strip(normalise(target, "latin-1")).target
            return self.pass_through(view, request, target, conn)
        if isinstance(decision, Revalidate | Fetch):
            # A sliced object, or one not stored yet in a zone that slices large ones.
            if stored.status == 206 if stored is not None else view.zone.edge.lfo:
                return self.sliced(view, key, target, request, conn, stored)
            return self.fill(view, key, target, request, conn, stored, decision)
        if isinstance(decision, DeliverRefreshing) and stored is not None:
            # Another worker may have stored a newer copy than the one in this worker's
            # memory, or evicted it: what the index holds now decides (one query, and
            # only for an answer that is not fresh).
            current = self.lookup.reload(view, key, request.hmap)
            if current is None or current.obj.id != stored.obj.id:
                return self.handle(request, conn)  # decided again on what is stored now
            if stored.status == 206:  # each slice is refreshed on its own
                return self.sliced(view, key, target, request, conn, stored)
            path, query = split_target(target)
            self.filler.refresh(
                FillRequest(
                    view,
                    key,
                    key_hash(key),
                    path,
                    query,
                    target,
                    request,
                    conn.client,
                    stored,
                    REVALIDATE,
                )
            )
            return self._stored(conn, request, view, key, stored, decision.xcache, now)
        raise AssertionError(f"no executor for {decision!r}")

    def from_edges(self, request: Request, conn: Exchange) -> Awaitable[None] | None:
        """`handle` on an origin shield (--role shield): only the cluster's edges are
        answered (their requests carry the cluster's secret), for the client they ask for
        (X-Real-IP, X-Forwarded-Proto, as edge/origin.py `shield_headers` sends them), and
        only once this node has applied the event the edge had (SEQ_HEADER)."""
        hmap = request.hmap
        if not is_internal(hmap, self.internal_token):
            self.deliver.error(conn, request, 403, SHIELD_ONLY)
            return None
        if request.method == "OPTIONS" and request.target == "*":
            # An edge asking whether this shield still answers (edge/origin.py `alive`):
            # RFC 9110 §9.3.7, OPTIONS * is about the server itself.
            self.deliver.error(conn, request, 200, "OK")
            return None
        client = hmap.get("x-real-ip")
        if client:
            conn.client = client
        if hmap.get("x-forwarded-proto") in ("http", "https"):
            request.scheme = hmap["x-forwarded-proto"]
        seq = hmap.get(SEQ_HEADER, "")
        wanted = int(seq) if seq.isdigit() and seq.isascii() else 0
        if wanted > self.state.applied:
            self.catch_up()
            if wanted > self.state.applied:
                return self._when_applied(wanted, request, conn)
        return self.handle(request, conn)

    async def _when_applied(self, seq: int, request: Request, conn: Exchange) -> None:
        """Answer once this shield has applied event `seq` (the node applies it within
        milliseconds of the edge that asked, as every node reads the same stream), or
        refuse after SHIELD_CATCH_UP: the edge then asks elsewhere."""
        deadline = time.monotonic() + SHIELD_CATCH_UP
        while time.monotonic() < deadline:
            await asyncio.sleep(SHIELD_POLL)
            self.catch_up()
            if self.state.applied >= seq:
                answered = self.handle(request, conn)
                if answered is not None:
                    await answered
                return
        self.stats.fault("shield_behind")
        self.deliver.error(conn, request, 503, SHIELD_BEHIND, SHIELD_BEHIND_FIELD)

    def _stored(
        self,
        conn: Exchange,
        request: Request,
        view: ZoneView,
        key: str,
        stored: Entry,
        xcache: XCache,
        now: float,
    ) -> Awaitable[None] | None:
        """Answer from the stored response, and note the access for eviction."""
        if now - stored.touched >= LRU_INTERVAL:
            stored.touched = now
            self.accessed[stored.obj.id] = now
        if view.zone.edge.compression:  # br or gzip as the client accepts
            return self.compressor.hit(conn, request, view, key, stored, xcache, now)
        return self.deliver.entry(conn, request, stored, xcache, now)

    def _route(self, request: Request, conn: Exchange) -> Route | None:
        """The zone, origin-form target and cache key of a request, kept for the next
        request with the same Host and target; None when an error answered it (unusable
        target, no zone for the host)."""
        routed = request_host(request)
        if routed is None:
            self.deliver.error(conn, request, 400, "request target not understood")
            return None
        host, target = routed
        challenge_path = target.startswith(ACME_CHALLENGE_PREFIX)
        if challenge_path:
            # Before any zone (one that redirects to https, or none at all, is still
            # validated); never memoised, so a challenge removed is not answered again.
            challenge = on_challenge(request.method, target, self.state.challenges)
            if challenge is not None:
                self.deliver.challenge(conn, request, challenge)
                return None
        target = normalise(target, "latin-1")  # one key per resource (RFC 3986 §6.2.2)
        view = self.state.route(host)
        if view is None:
            self.deliver.error(conn, request, 404, "no zone serves this host")
            return None
        if view.zone.securetoken.enabled:  # the token routes nowhere (edge/securetoken.py)
            target = securetoken.strip(target).target
        path, query = split_target(target)
        keyed = view.zone.cache.querystring
        # A query that is not in the key is not sent either: an origin that reflects it
        # would otherwise have one client's query served to everyone in the shared object.
        route = (view, target if keyed else path, cache_key(view.zone.id, path, query, keyed))
        if len(request.target) <= MEMO_TARGET_LIMIT and not challenge_path:
            if len(self._routes) >= MEMO_ROUTES:
                self._routes.clear()
            self._routes[(request.hmap.get("host"), request.target)] = route
        return route

    def finished(self, request: Request, conn: Exchange) -> None:
        """A response is written (or cut short): count it, and log it."""
        stats = self.stats
        stats.count(conn.zone_id, conn.xcache or "ABORTED", conn.sent)
        label = conn.label
        if label is not PLAIN_LABEL:  # the plain ones are the rest (edge/http.py)
            protocols = stats.protocols
            protocols[label] = protocols.get(label, 0) + 1
        if self.access_log is not None:
            self.access_log.add(request, conn, time.time(), conn.elapsed())  # fails soft

    async def fill(
        self,
        view: ZoneView,
        key: str,
        target: str,
        request: Request,
        conn: Exchange,
        stored: Entry | None,
        asked: Revalidate | Fetch,
    ) -> None:
        path, query = split_target(target)
        job = FillRequest(
            view, key, key_hash(key), path, query, target, request, conn.client, stored, asked
        )
        job.interim = conn.interim  # if it leads the fill; never stored (fills.py)
        await self.delivered(view, key, target, request, conn, job, await self.filler.obtain(job))

    async def sliced(
        self,
        view: ZoneView,
        key: str,
        target: str,
        request: Request,
        conn: Exchange,
        stored: Entry | None,
    ) -> None:
        """A large object from its slices (zone `edge.lfo`), or as any object when its
        first slice's fill found it is not sliced (edge/slicer.py)."""
        not_sliced = await self.slicer.serve(view, key, target, request, conn, stored)
        if not_sliced is not None:
            await self.delivered(view, key, target, request, conn, *not_sliced)

    async def delivered(
        self,
        view: ZoneView,
        key: str,
        target: str,
        request: Request,
        conn: Exchange,
        job: FillRequest,
        outcome: Outcome,
    ) -> None:
        """Deliver what the fill `job` gave."""
        policy = view.zone.cache
        if isinstance(outcome, Fetched):
            # What was stored when the fill began (a purge may have removed it since the
            # lookup): a fetch that replaces it is EXPIRED, one with nothing stored a MISS.
            xcache = XCache.MISS if job.stored is None else XCache.EXPIRED
            resume = await self.deliver.fill(conn, request, outcome, policy, xcache, view.edits)
            if resume is not None:  # its leader died mid-body: the rest from the origin
                rest = await self.filler.resume(job, outcome.head, resume.position)
                await self.deliver.relay(conn, rest, resume.chunked)
        elif isinstance(outcome, Whole):
            xcache = XCache.MISS if job.stored is None else XCache.EXPIRED  # as Fetched
            made = outcome.entry
            shield = shield_outcome(made.hmap)  # what the shield it came through answered
            await self.deliver.entry_async(conn, request, made, xcache, time.time(), shield)
        elif isinstance(outcome, Cached):
            self.accessed[outcome.entry.obj.id] = time.time()
            await self.deliver.entry_async(conn, request, outcome.entry, XCache.HIT, time.time())
        elif isinstance(outcome, Revalidated):
            self.lookup.memory.drop(key)
            entry = self.lookup.find(view, key, request.hmap)
            if entry is None:  # hard-purged or evicted meanwhile: fetch it whole
                await self.fill(view, key, target, request, conn, None, FETCH_MISS)
            else:
                await self.deliver.entry_async(
                    conn, request, entry, XCache.REVALIDATED, time.time()
                )
        elif isinstance(outcome, Withdrawn):
            self.lookup.invalidated(outcome.generation)
            await self._serve_withdrawn(view, request, conn, outcome)
        elif isinstance(outcome, Passed):
            if outcome.response is None:  # a follower of a fill that is not stored
                method = "GET" if request.method == "HEAD" else request.method
                await self.pass_through(view, request, target, conn, XCache.MISS, method)
            else:
                await self.deliver.origin_response(
                    conn, request, outcome.response, XCache.MISS, policy, view.edits
                )
        elif isinstance(outcome, ServeStale) and job.stored is not None:
            # Stale on error, as stale-if-error / proxy_cache_use_stale do.
            await self.deliver.entry_async(conn, request, job.stored, XCache.STALE, time.time())
        elif isinstance(outcome, Fail):
            self.deliver.error(conn, request, outcome.status, "origin failed")
        else:
            raise AssertionError(f"no executor for {outcome!r}")

    async def _serve_withdrawn(
        self, view: ZoneView, request: Request, conn: Exchange, withdrawn: Withdrawn
    ) -> None:
        """The revalidated body with the 304's headers, to this client alone; the body
        file goes once it is delivered (a worker already streaming it holds it open)."""
        obj = withdrawn.obj
        path = self.bodies.object_path(obj.id)
        entry = Entry(obj, view.zone.cache, str(path), self.state.applied, True, view.edits)
        try:
            await self.deliver.entry_async(conn, request, entry, XCache.REVALIDATED, time.time())
        finally:
            self.bodies.remove([obj.id])

    async def pass_through(
        self,
        view: ZoneView,
        request: Request,
        target: str,
        conn: Exchange,
        xcache: XCache = XCache.BYPASS,
        method: str | None = None,
    ) -> None:
        """Send the request to the origin uncached and relay the answer."""
        zone = view.zone
        headers = forward_headers(
            request.headers,
            request.hmap,
            zone,
            conn.client,
            shared=False,
            cdn_id=self.origin.cdn_id,
            scheme=request.scheme,
        )
        try:
            response = await self.origin.request(
                zone, method or request.method, target, headers, request.body, interim=conn.interim
            )
        except OriginError as exc:
            return self.deliver.error(conn, request, exc.status, "origin failed")
        if request.method not in CACHEABLE_METHODS:
            self._invalidate(view, request, target, response.status, response.fields)
        await self.deliver.origin_response(conn, request, response, xcache, zone.cache, view.edits)

    def _invalidate(
        self,
        view: ZoneView,
        request: Request,
        target: str,
        status: int,
        fields: tuple[tuple[str, str], ...],
    ) -> None:
        """RFC 9111 §4.4: an unsafe request that succeeded makes its URI's objects stale."""
        host = (request_host(request) or ("", ""))[0]
        rhmap = header_map(fields)
        paths = [  # spelled as the stored objects' keys are (RFC 3986 §6.2.2)
            split_target(normalise(uri, "latin-1"))[0]
            for uri in invalidated_paths(request.method, status, target, rhmap, host)
        ]
        self.lookup.invalidated(self.index.mark_stale(view.zone.id, paths))

    def take_accesses(self) -> dict[str, float]:
        """Objects served since the last call, with when (for LRU eviction)."""
        accessed, self.accessed = self.accessed, {}
        return accessed
