"""The one response writer: every response the edge sends, whatever it comes from (a HIT,
a fill, a pass, an error, the connection's own refusals), gets its status line, its
header fields as clients may see them and its framing here. Pure byte builders: the
caller writes what they return.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from pullzone.edge.internal import FROM_SHIELD, SHIELD_REFUSED
from pullzone.edge.labels import XCache
from pullzone.edge.switches import NO_EDITS, ResponseEdits
from pullzone.spec.cache_control import parse_cache_control
from pullzone.spec.freshness import client_cache_control
from pullzone.spec.headers import HOP_BY_HOP, HeaderMap, connection_tokens, header_map
from pullzone.spec.ranges import (
    content_range,
    multipart_length,
    multipart_parts,
    unsatisfiable_content_range,
)
from pullzone.zones.model import CachePolicy

REASONS = {
    102: "Processing",
    103: "Early Hints",
    200: "OK",
    203: "Non-Authoritative Information",
    204: "No Content",
    206: "Partial Content",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    508: "Loop Detected",
}

# Not passed on to another cache (an edge asking its shield): framing and the fields the
# answering cache sets itself.
_NOT_FORWARDED = HOP_BY_HOP | {"content-length", "age", "x-cache", FROM_SHIELD, SHIELD_REFUSED}
# Never shown to clients: nor tags, which are for purging (as Fastly and Cloudflare strip
# Surrogate-Key and Cache-Tag), nor what is for caches only.
_NOT_DELIVERED = _NOT_FORWARDED | {
    "surrogate-key",
    "surrogate-control",
    "cdn-cache-control",  # RFC 9213: for this cache, not for browsers
    "cache-tag",
}
# RFC 9110 §15.4.5: what a 304 carries.
NOT_MODIFIED_FIELDS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"}
)
# The methods the edge takes (RFC 9110 §10.2.1); TRACE is answered 405.
ALLOW = b"Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"


def status_line(status: int, reason: str | None = None) -> bytes:
    return f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Status')}\r\n".encode("latin-1")


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    return "".join(f"{n}: {v}\r\n" for n, v in headers).encode("latin-1", "replace")


def interim_fields(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The fields of an interim (1xx) response the origin sent, as the client is sent
    them (RFC 9110 §15.2): less those about the origin's connection, and no framing (a
    1xx has no content, RFC 9110 §8.6)."""
    connection = header_map(headers).get("connection")
    drop = HOP_BY_HOP | {"content-length"} | connection_tokens(connection)
    return [(n, v) for n, v in headers if n.lower() not in drop]


def interim_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """That interim response over HTTP/1.1."""
    return status_line(status) + encode_headers(interim_fields(headers)) + b"\r\n"


def client_headers(
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    hmap: HeaderMap,
    policy: CachePolicy | None,
    edits: ResponseEdits = NO_EDITS,
) -> list[tuple[str, str]]:
    """An origin's response headers as the client sees them, whether the response was
    stored or not: framing, hop-by-hop fields and tags removed, and the zone's `expiry`
    (given a `policy`) in place of the origin's Cache-Control and Expires, unless the
    origin kept the response to one user or one use (private, no-store, no-cache, a
    Set-Cookie): a browser TTL must not make a personal answer reusable. `edits`: the
    zone's own fields (edge/switches.py), in place of the origin's; for another cache
    (`edits.for_cache`), the stored fields as they are."""
    if edits.for_cache:
        drop = _NOT_FORWARDED | edits.removed | connection_tokens(hmap.get("connection"))
        return [(n, v) for n, v in headers if n.lower() not in drop]
    drop = _NOT_DELIVERED | connection_tokens(hmap.get("connection"))
    out = [(n, v) for n, v in headers if n.lower() not in drop]
    if policy is not None and policy.expiry_secs > 0 and not _kept_personal(hmap):
        out = [(n, v) for n, v in out if n.lower() not in ("cache-control", "expires")]
        out.append(("Cache-Control", client_cache_control(None, policy.expiry_secs) or ""))
    return edits.apply(out)


def _kept_personal(hmap: HeaderMap) -> bool:
    if "set-cookie" in hmap:
        return True
    cc = parse_cache_control(hmap.get("cache-control"))
    return "private" in cc or "no-store" in cc or "no-cache" in cc


@dataclass(frozen=True, slots=True)
class Framing:
    """How a response's body is delimited (RFC 9112 §6): what h11 calls body framing."""

    field: bytes  # Content-Length or Transfer-Encoding, or nothing
    body: bool  # a body follows the head
    chunked: bool  # the body is sent in chunks (RFC 9112 §7.1)
    close: bool  # the body ends when the connection closes (RFC 9112 §6.3, last rule)


def body_framing(method: str, status: int, length: int | None, version: str) -> Framing:
    """The framing of a response of `status` with a body of `length` bytes (None: not
    known yet) to a `method` request over HTTP/`version` ("1.0", "1.1" or "2").

    HTTP/2 (RFC 9113 §8.1) has no chunks and no close-delimited bodies: the stream's
    END_STREAM ends the body, so a body of unknown length is sent as it comes."""
    if 100 <= status < 200 or status == 204:
        # RFC 9110 §8.6: never a Content-Length on a 1xx or a 204; neither has a body.
        return Framing(b"", False, False, False)
    field = b"Content-Length: %d\r\n" % length if length is not None else b""
    if method == "HEAD" or status == 304:
        # RFC 9110 §9.3.2, §15.4.5: no body; the length, when known, is the GET's.
        return Framing(field, False, False, False)
    if length is not None:
        return Framing(field, True, False, False)
    if version == "2":
        return Framing(b"", True, False, False)
    if version != "1.0":
        return Framing(b"Transfer-Encoding: chunked\r\n", True, True, False)
    return Framing(b"", True, False, True)  # an HTTP/1.0 client knows no chunks


def chunk(data: bytes, chunked: bool) -> bytes:
    """`data` as the framing carries it (RFC 9112 §7.1: one chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data) if chunked and data else data


LAST_CHUNK = b"0\r\n\r\n"


def connection_field(close: bool, version: str) -> bytes:
    """Connection: close when this response ends the connection; keep-alive for a 1.0
    client that stays (RFC 9112 §9.3); never over HTTP/2 (RFC 9113 §8.2.2)."""
    if version == "2":
        return b""
    if close:
        return b"Connection: close\r\n"
    if version == "1.0":
        return b"Connection: keep-alive\r\n"
    return b""


_X_CACHE = {label: b"X-Cache: %s\r\n" % label.value.encode() for label in XCache}


def cache_fields(xcache: XCache, age: float | None, shield: XCache | None = None) -> bytes:
    """X-Cache, and Age for a stored response (RFC 9111 §5.1). `shield`: what the origin
    shield the response came through answered (`MISS, shield=HIT`)."""
    if shield is None:
        field = _X_CACHE[xcache]
    else:
        field = b"X-Cache: %s, shield=%s\r\n" % (xcache.value.encode(), shield.value.encode())
    if age is None:
        return field
    if not 0 <= age < 2**31:  # RFC 9111 §1.2.2: too large to represent is 2^31
        age = 0 if age < 0 else 2**31
    return b"Age: %d\r\n%s" % (age, field)


def shield_outcome(fields: HeaderMap) -> XCache | None:
    """What the shield a response came through (noted in FROM_SHIELD by edge/origin.py)
    answered, by its X-Cache; None when the origin answered."""
    if FROM_SHIELD not in fields:
        return None
    label = fields.get("x-cache", "").partition(",")[0].strip()
    return XCache(label) if label in XCache.__members__ else XCache.MISS


def response_head(
    status: int, reason: str | None, fields: list[tuple[str, str]], framing: Framing, tail: bytes
) -> bytes:
    """A whole response head; `tail` holds the fields that depend on the exchange
    (cache_fields, connection_field)."""
    return status_line(status, reason) + encode_headers(fields) + framing.field + tail + b"\r\n"


def plain(status: int, message: str, *, head_only: bool, fields: bytes, tail: bytes) -> bytes:
    """The edge's own answer (an error, or OPTIONS answered here): a short text body."""
    body = f"{status} {message}\n".encode()
    return (
        status_line(status)
        + b"Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
        + fields
        + b"Content-Length: %d\r\n" % len(body)
        + tail
        + b"\r\n"
        + (b"" if head_only else body)
    )


def unsatisfiable_head(size: int, tail: bytes) -> bytes:
    """A 416 (RFC 9110 §15.5.17)."""
    return (
        status_line(416)
        + b"Content-Range: %s\r\nContent-Length: 0\r\n" % unsatisfiable_content_range(size).encode()
        + tail
        + b"\r\n"
    )


def partial_head(
    fields: list[tuple[str, str]], ranges: list[tuple[int, int]], size: int, tail: bytes
) -> tuple[bytes, tuple[list[bytes], bytes] | None]:
    """A 206's head for `ranges` of a representation of `size` bytes (RFC 9110 §15.3.7),
    and for several ranges the multipart delimiters: what goes before each range, and
    the closing one."""
    if len(ranges) == 1:
        first, last = ranges[0]
        return (
            status_line(206)
            + encode_headers(fields)
            + b"Content-Range: %s\r\n" % content_range(first, last, size).encode()
            + b"Content-Length: %d\r\n" % (last - first + 1)
            + tail
            + b"\r\n"
        ), None
    content_type = next((v for n, v in fields if n.lower() == "content-type"), None)
    boundary = secrets.token_hex(12)
    parts, closing = multipart_parts(ranges, size, content_type, boundary)
    return (
        status_line(206)
        + encode_headers([(n, v) for n, v in fields if n.lower() != "content-type"])
        + b"Content-Type: multipart/byteranges; boundary=%s\r\n" % boundary.encode()
        + b"Content-Length: %d\r\n" % multipart_length(ranges, parts, closing)
        + tail
        + b"\r\n"
    ), (parts, closing)
