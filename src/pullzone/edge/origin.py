"""Requests to a zone's origin (edge/upstream.py, streaming), and what a cache may forward
to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from urllib.parse import urlsplit

from yarl import URL

from pullzone.edge.http import OUT_OF_FILES
from pullzone.edge.internal import FROM_SHIELD, INTERNAL_HEADER, SEQ_HEADER, SHIELD_REFUSED
from pullzone.edge.shields import CONNECT_TIMEOUT, WATCH_EVERY, ShieldNode, Shields
from pullzone.edge.stats import WorkerStats
from pullzone.edge.switches import fails_over
from pullzone.edge.upstream import (
    Endpoint,
    InterimReport,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
)
from pullzone.spec.headers import HOP_BY_HOP, connection_tokens, header_map
from pullzone.spec.uri import split_authority
from pullzone.spec.vary import accept_encoding
from pullzone.zones.model import Zone

# Headers that some origins and frameworks trust to rewrite the URL, host or method. The
# cache key does not include them, so forwarding them would let one client poison what
# everyone else is served (the web cache poisoning class of attacks): never forward.
# Names are compared with `_` read as `-`: CGI-style stacks (PHP, WSGI environ) map
# `X_Forwarded_Host` and `X-Forwarded-Host` to the same variable.
UNKEYED_OVERRIDES = frozenset(
    {
        "x-forwarded-host",
        "x-forwarded-server",
        "x-forwarded-scheme",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-original-url",
        "x-original-host",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-host",
        # RFC 7239: the standard form of the above (host=, proto=); frameworks honour it.
        "forwarded",
        # The scheme and the path, as some stacks take them from a proxy.
        "x-forwarded-ssl",
        "front-end-https",
        "x-url-scheme",
        "x-forwarded-uri",
        "x-envoy-original-path",
        "x-override-url",
    }
)
# Headers origins read as the client's address: the edge sets them from the address it
# saw; a client's own values would let it choose the address the origin logs and trusts.
CLIENT_ADDRESS = ("X-Real-IP", "True-Client-IP", "X-Client-IP")
_CLIENT_ADDRESS = frozenset(name.lower() for name in CLIENT_ADDRESS)
# Framing is the edge's own: the client's Content-Length describes the body it sent, not
# the one forwarded (a fill sends none; upstream.py frames a pass-through body itself), and a
# stale length would leave the origin waiting for bytes that never come (RFC 9112 §6.3).
# Expect: 100-continue was answered by the edge (http.py).
_FRAMING = frozenset({"content-length", "expect"})
_CONDITIONS = frozenset({"if-none-match", "if-modified-since"})
_SET_BY_EDGE = frozenset(
    {"host", "x-forwarded-for", "x-forwarded-proto", "via", "cdn-loop", "max-forwards"}
    | {INTERNAL_HEADER, SEQ_HEADER}  # the cluster's own stay in it (edge/internal.py)
)
# A fill fetches the whole representation unconditionally; the cache answers the
# client's own conditions and ranges itself (RFC 9111 §4.3.1).
_NOT_FOR_FILLS = frozenset(
    {"range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"}
)


# Told of each interim (1xx) response the origin sends before its final one.
Interim = InterimReport


def response_fields(response: UpstreamResponse) -> tuple[tuple[str, str], ...]:
    """The response's header fields, noting in FROM_SHIELD the origin shield that answered
    it, if one did (an origin's own FROM_SHIELD is not taken)."""
    fields = response.fields
    if any(name.lower() == FROM_SHIELD for name, _ in fields):
        fields = tuple((name, value) for name, value in fields if name.lower() != FROM_SHIELD)
    shield = response.shield
    return fields if shield is None else (*fields, (FROM_SHIELD, shield))


class OriginError(Exception):
    """The origin could not be reached (502) or did not answer in time (504)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def origin_url(zone: Zone, target: str) -> URL:
    base = zone.origin.rstrip("/")
    return URL(base + target, encoded=True)


def origin_host(zone: Zone) -> str:
    pinned = zone.originip
    if pinned.enabled and pinned.ip and pinned.customhostheader:
        return pinned.customhostheader
    return zone.host_header or _netloc(zone.origin)


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One way of asking for a target: where to connect, the Host sent, and the TLS SNI
    (and name the certificate must match) when it is not the URL's host."""

    url: URL
    host: str
    server_hostname: str | None = None
    backup: bool = False
    shield: ShieldNode | None = None


IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def attempts(zone: Zone, target: str) -> list[Attempt]:
    """The zone's origin for `target`, then its backup origin if it has one (same path,
    its own host). `originip` pins the first one's address: the URL names the address,
    Host and SNI stay the origin's host (or `customhostheader`)."""
    host = origin_host(zone)
    url = origin_url(zone, target)
    sni = None
    pinned = zone.originip
    if pinned.enabled and pinned.ip:
        url = url.with_host(pinned.ip)
        if url.scheme == "https":
            sni = split_authority(host)[0]
    found = [Attempt(url, host, sni)]
    if zone.backup:
        backup_url = URL(zone.backup.rstrip("/") + target, encoded=True)
        found.append(Attempt(backup_url, _netloc(zone.backup), backup=True))
    return found


def forward_headers(
    headers: list[tuple[str, str]],
    hmap: dict[str, str],
    zone: Zone,
    peer: str,
    *,
    shared: bool,
    cdn_id: str,
    scheme: str = "http",
) -> list[tuple[str, str]]:
    """The client's request headers as the origin is sent them. `shared`: the answer is
    for the cache, shared by every client (a fill), so the client's own conditions and
    ranges stay with the edge, which answers them itself. `scheme`: how the client
    reached the edge (X-Forwarded-Proto: "https" over TLS)."""
    drop = HOP_BY_HOP | connection_tokens(hmap.get("connection")) | UNKEYED_OVERRIDES
    drop = drop | _FRAMING | _CLIENT_ADDRESS | _SET_BY_EDGE
    if shared:
        drop = drop | _NOT_FOR_FILLS
    out = [
        (name, value)
        for name, value in headers
        if name.lower() not in drop and name.lower().replace("_", "-") not in drop
    ]
    # One of four values (spec/vary.py): what `Vary: Accept-Encoding` variants are keyed on.
    out = [(n, v) for n, v in out if n.lower() != "accept-encoding"]
    out.append(("Accept-Encoding", accept_encoding(hmap.get("accept-encoding"))))
    if zone.edge.xff:  # `edge.xff`: off by default, the client's address is not sent
        forwarded_for = hmap.get("x-forwarded-for")
        out.append(("X-Forwarded-For", f"{forwarded_for}, {peer}" if forwarded_for else peer))
    out.append(("X-Forwarded-Proto", scheme))
    out.append(("Via", f"{hmap['via']}, 1.1 pullzone" if "via" in hmap else "1.1 pullzone"))
    # RFC 8586: this CDN is added to the request's CDN-Loop, so one that comes back is seen.
    out.append(("CDN-Loop", f"{hmap['cdn-loop']}, {cdn_id}" if "cdn-loop" in hmap else cdn_id))
    hops = hmap.get("max-forwards", "").strip()
    if hops.isdigit() and hops.isascii():  # RFC 9110 §7.6.2: one hop fewer (0 is answered)
        out.append(("Max-Forwards", str(max(0, int(hops) - 1))))
    out.extend((name, peer) for name in CLIENT_ADDRESS)
    out.append(("Host", origin_host(zone)))
    return out


def shield_attempt(shield: ShieldNode, host: str, target: str) -> Attempt:
    """Asking `shield` for `target` of the zone named `host`, as a visitor asks an edge."""
    return Attempt(URL(f"http://{shield.address}{target}", encoded=True), host, shield=shield)


def shield_headers(
    headers: list[tuple[str, str]], host: str, token: str, seq: int, cdn_id: str
) -> list[tuple[str, str]]:
    """An origin request's headers (forward_headers) as a shield is sent them: Host the
    zone's name, the cluster's secret and the event this edge had applied, and neither
    this hop's CDN-Loop entry (the shield, the same CDN, adds it when it asks the origin:
    one it sees already would be a loop, RFC 8586) nor its X-Forwarded-For entry (the
    shield adds the client's, which it takes from X-Real-IP)."""
    fields = header_map(headers)
    peer = fields.get("x-real-ip", "")
    out: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "host":
            continue
        if lower == "cdn-loop" or lower == "x-forwarded-for":
            value = _without_last(value, cdn_id if lower == "cdn-loop" else peer)
            if not value:
                continue
        out.append((name, value))
    out += [("Host", host), (INTERNAL_HEADER, token), (SEQ_HEADER, str(seq))]
    return out


def _without_last(value: str, item: str) -> str:
    """A list field's value less its last member if that is `item` (what this hop added)."""
    head, _, last = value.rpartition(",")
    return head.rstrip() if last.strip() == item else value


def unusable_status(status: int, headers: list[tuple[str, str]]) -> str | None:
    """Why a response status cannot be relayed or stored, if it cannot (then: 502)."""
    if not 100 <= status <= 599:  # RFC 9110 §15: three digits, first 1 to 5
        return f"status {status} is not an HTTP status"
    if status == 101:  # the edge never forwards Upgrade (RFC 9110 §7.8): unsolicited
        return "a 101 Switching Protocols nobody asked for"
    if status == 304 and not any(name.lower() in _CONDITIONS for name, _ in headers):
        # RFC 9110 §15.4.5: a 304 answers a conditional GET or HEAD only.
        return "a 304 Not Modified to an unconditional request"
    return None


class Origin:
    def __init__(
        self,
        connect_timeout: float,
        read_timeout: float,
        stats: WorkerStats | None = None,
        cdn_id: str = "pullzone",
        shields: Shields | None = None,
        cluster_token: str = "",
    ) -> None:
        self.stats = stats
        self.cdn_id = cdn_id  # this CDN in CDN-Loop (RFC 8586): the edge domain
        # The cluster's origin shields (edge/shields.py), asked with the cluster's secret.
        self.shields = shields
        self.cluster_token = cluster_token
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._pool = UpstreamPool()

    async def request(
        self,
        zone: Zone,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        *,
        interim: Interim | None = None,
        shield_seq: int | None = None,
    ) -> UpstreamResponse:
        """Send the request and return once the response head has arrived; `interim` is
        told of the interim responses that come before it. `shield_seq`: the request is a
        fill, made when this node had applied that event; in a zone with `shield`, the
        shields are asked first (`_shielded`). A refused or
        timed-out connection, or a 5xx, is asked again of the zone's backup origin, once
        (counted: the `origin_failover` fault); the backup's answer is the answer. Only an
        idempotent request is asked twice (RFC 9110 §9.2.2): a POST that timed out may have
        reached the first origin, and must not reach a second one."""
        if shield_seq is not None and zone.shield.enabled and self.shields is not None:
            answer = await self._shielded(zone, target, headers, interim, shield_seq)
            if answer is not None:
                return answer
        first, *rest = attempts(zone, target)
        if not rest or method not in IDEMPOTENT:
            return await self._send(zone, method, first, headers, body, interim)
        try:
            response = await self._send(zone, method, first, headers, body, interim)
        except OriginError:
            pass
        else:
            if not fails_over(response.status):
                return response
            response.release()
        if self.stats is not None:
            self.stats.fault("origin_failover")
        return await self._send(zone, method, rest[0], headers, body, interim)

    async def _shielded(
        self,
        zone: Zone,
        target: str,
        headers: list[tuple[str, str]],
        interim: Interim | None,
        seq: int,
    ) -> UpstreamResponse | None:
        """A fill's GET asked of the shield that owns the object, then of the next one
        while a shield fails (unreachable, timed out, or refusing: not caught up with the
        event log); None when none answered (each failure counted: `shield_failover`)."""
        assert self.shields is not None
        host = zone.fqdn(self.cdn_id)
        sent = shield_headers(headers, host, self.cluster_token, seq, self.cdn_id)
        for shield in self.shields.order(f"{zone.id} {target}"):
            attempt = shield_attempt(shield, host, target)
            try:
                response = await self._watched(
                    shield, self._send(zone, "GET", attempt, sent, None, interim)
                )
            except OriginError:
                self.shields.failed(shield)
            else:
                if response.header(SHIELD_REFUSED) is None:
                    response.shield = shield.node
                    return response
                response.release()
            if self.stats is not None:
                self.stats.fault("shield_failover")
        return None

    async def _watched(
        self, shield: ShieldNode, sending: Awaitable[UpstreamResponse]
    ) -> UpstreamResponse:
        """`sending`'s response, unless the shield stops answering before its head came
        (edge/shields.py WATCH_EVERY): then an OriginError (counted: `shield_stalled`)."""
        task = asyncio.ensure_future(sending)
        try:
            while True:
                done, _ = await asyncio.wait((task,), timeout=WATCH_EVERY)
                if done:
                    return task.result()
                assert self.shields is not None
                if not await self.shields.answering(shield, self.cluster_token):
                    if self.stats is not None:
                        self.stats.fault("shield_stalled")
                    raise OriginError(504, f"shield {shield.node} stopped answering")
        finally:
            if not task.done():
                task.cancel()

    async def _send(
        self,
        zone: Zone,
        method: str,
        attempt: Attempt,
        headers: list[tuple[str, str]],
        body: bytes | None,
        interim: Interim | None = None,
    ) -> UpstreamResponse:
        started = time.monotonic()
        failed = True
        if attempt.backup:
            headers = [(n, v) for n, v in headers if n.lower() != "host"]
            headers.append(("Host", attempt.host))
        url = attempt.url
        endpoint = Endpoint(url.scheme, url.raw_host or "", url.port or 80, attempt.server_hostname)
        try:
            response = await self._pool.request(
                endpoint,
                method,
                url.raw_path_qs,
                headers,
                body,
                connect_timeout=CONNECT_TIMEOUT if attempt.shield else self._connect_timeout,
                read_timeout=self._read_timeout,
                interim=interim,
            )
            problem = unusable_status(response.status, headers)
            if problem is not None:
                response.close()
                raise OriginError(502, f"origin answered {problem}")
            failed = response.status >= 500
            return response
        except TimeoutError as exc:
            raise OriginError(504, f"origin timed out: {exc}") from exc
        except (UpstreamError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in OUT_OF_FILES and self.stats:
                self.stats.fault("out_of_files")  # no descriptor for the origin socket
            raise OriginError(502, f"origin unreachable: {exc}") from exc
        finally:
            if self.stats is not None:
                self.stats.origin_answer(zone.id, failed, time.monotonic() - started)

    async def close(self) -> None:
        self._pool.close()
