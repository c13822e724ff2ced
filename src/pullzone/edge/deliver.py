"""Writing responses to clients: from a stored entry, from a fill in progress, from the
origin directly, or an error. Conditional and Range requests are answered here from the
stored representation (RFC 9110 §13, §14)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal

import aiohttp

from pullzone.cache.bodies import COMPLETE, FILLING, FillReader
from pullzone.edge.entry import MEMORY_BODY_LIMIT, Entry, client_headers, encode_headers
from pullzone.edge.fills import CHUNK, Fetched, Filler, Handoff
from pullzone.edge.http import Connection, Request, status_line
from pullzone.spec.conditional import if_range_ok
from pullzone.spec.dates import parse_http_date
from pullzone.spec.freshness import current_age
from pullzone.spec.headers import header_map
from pullzone.spec.ranges import (
    content_range,
    multipart_length,
    multipart_parts,
    parse_range,
    unsatisfiable_content_range,
)
from pullzone.zones.model import CachePolicy

_NO_BODY_STATUSES = frozenset({204, 304})
# The rest of a fill from `position`, straight from the origin (Filler.resume).
Resume = Callable[[int], Awaitable[aiohttp.ClientResponse | None]]
# The methods the edge takes (RFC 9110 §10.2.1); TRACE is answered 405 (edge/lifecycle.py).
_ALLOW = b"Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"


def _framing(conn: Connection, request: Request) -> bytes:
    if conn.close_after:
        return b"Connection: close\r\n"
    if request.version == "1.0":
        return b"Connection: keep-alive\r\n"
    return b""


_X_CACHE = {
    status: b"X-Cache: %s\r\n" % status.encode()
    for status in ("HIT", "MISS", "STALE", "REVALIDATED", "EXPIRED", "BYPASS")
}


def _cache_fields(conn: Connection, xcache: str, age: float | None) -> bytes:
    conn.xcache = xcache
    field = _X_CACHE[xcache]
    if age is None:
        return field
    if not 0 <= age < 2**31:  # RFC 9111 §1.2.2: too large to represent is 2^31
        age = 0 if age < 0 else 2**31
    return b"Age: %d\r\n%s" % (age, field)


class Deliverer:
    def __init__(self, filler: Filler) -> None:
        self.filler = filler

    # -- errors -----------------------------------------------------------------------

    def error(self, conn: Connection, request: Request, status: int, message: str) -> None:
        self._plain(conn, request, status, message, _ALLOW if status == 405 else b"")

    def options(self, conn: Connection, request: Request) -> None:
        """The edge's own answer to `OPTIONS` with `Max-Forwards: 0` (RFC 9110 §9.3.7)."""
        self._plain(conn, request, 200, "OK", _ALLOW)

    def _plain(
        self, conn: Connection, request: Request, status: int, message: str, fields: bytes
    ) -> None:
        body = f"{status} {message}\n".encode()
        conn.write(
            status_line(status)
            + b"Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
            + fields
            + b"Content-Length: %d\r\n" % len(body)
            + _framing(conn, request)
            + _cache_fields(conn, "BYPASS" if status < 500 else "MISS", None)
            + b"\r\n"
            + (b"" if request.method == "HEAD" else body)
        )

    async def error_async(
        self, conn: Connection, request: Request, status: int, message: str
    ) -> None:
        self.error(conn, request, status, message)

    # -- from the cache ---------------------------------------------------------------

    def entry(
        self, conn: Connection, request: Request, entry: Entry, xcache: str, now: float
    ) -> Awaitable[None] | None:
        tail = _cache_fields(conn, xcache, entry.age(now)) + _framing(conn, request)
        hmap = request.hmap
        if (
            "if-none-match" in hmap
            or "if-modified-since" in hmap
            or "if-match" in hmap
            or ("if-unmodified-since" in hmap)
        ):
            condition = entry.precondition(hmap)
            if condition == 304:
                conn.write(entry.not_modified_head() + tail + b"\r\n")
                return None
            if condition == 412:
                self.error(conn, request, 412, "precondition failed")
                return None
        size = entry.obj.size
        if "range" in hmap and request.method == "GET" and entry.obj.status == 200:
            ranges = None
            if if_range_ok(
                hmap.get("if-range"), etag=entry.etag, last_modified=entry.last_modified
            ):
                ranges = parse_range(hmap["range"], size)
            if ranges == "unsatisfiable":
                conn.write(_unsatisfiable(size) + tail + b"\r\n")
                return None
            if ranges:
                return self._ranges(conn, entry, ranges, tail)
        head = entry.full_head + tail + b"\r\n"
        if request.method == "HEAD" or entry.obj.status in _NO_BODY_STATUSES:
            conn.write(head)
            return None
        body = entry.body
        if body is None and size <= MEMORY_BODY_LIMIT:
            body = entry.read_body()
        if body is not None:
            conn.write(head + body)
            return None
        conn.write(head)
        return self._file(conn, entry, [(0, size - 1)], None)

    async def entry_async(
        self, conn: Connection, request: Request, entry: Entry, xcache: str, now: float
    ) -> None:
        if entry.body is None and entry.obj.size > 0:
            entry.load_body()
        pending = self.entry(conn, request, entry, xcache, now)
        if pending is not None:
            await pending

    def _ranges(
        self, conn: Connection, entry: Entry, ranges: list[tuple[int, int]], tail: bytes
    ) -> Awaitable[None] | None:
        head, multipart = _partial_head(entry.client_fields(), ranges, entry.obj.size)
        conn.write(head + tail + b"\r\n")
        if entry.body is None:
            return self._file(conn, entry, ranges, multipart)
        for i, (first, last) in enumerate(ranges):
            conn.write(
                (b"" if multipart is None else multipart[0][i]) + entry.body[first : last + 1]
            )
        if multipart is not None:
            conn.write(multipart[1])
        return None

    async def _file(
        self,
        conn: Connection,
        entry: Entry,
        ranges: list[tuple[int, int]],
        multipart: tuple[list[bytes], bytes] | None,
    ) -> None:
        """Stream byte ranges of a body file with backpressure; memory stays flat."""
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except FileNotFoundError:
            conn.close_after = True  # headers are out; the body is gone: cut the message
            raise ConnectionAbortedError("body file vanished") from None
        try:
            for i, (first, last) in enumerate(ranges):
                if multipart is not None:
                    conn.write(multipart[0][i])
                position = entry.obj.body_offset + first
                end = entry.obj.body_offset + last + 1
                while position < end:
                    data = os.pread(fd, min(CHUNK, end - position), position)
                    if not data:
                        raise ConnectionAbortedError("body file truncated")
                    conn.write(data)
                    position += len(data)
                    await conn.drain()
            if multipart is not None:
                conn.write(multipart[1])
        finally:
            os.close(fd)

    # -- from a fill in progress ------------------------------------------------------

    async def _fill_ranges(
        self,
        conn: Connection,
        fetched: Fetched,
        fields: list[tuple[str, str]],
        ranges: list[tuple[int, int]],
        tail: bytes,
    ) -> None:
        """A Range request on an object being filled: its 206 as soon as the ranges' bytes
        arrive, instead of the whole object from byte 0 (a cold seek in a large file)."""
        head, multipart = _partial_head(fields, ranges, fetched.head["length"])
        conn.write(head + tail + b"\r\n")
        for i, (first, last) in enumerate(ranges):
            if multipart is not None:
                conn.write(multipart[0][i])
            await self._stream_fill(conn, fetched.reader, first, last + 1)
        if multipart is not None:
            conn.write(multipart[1])

    async def _stream_fill(
        self,
        conn: Connection,
        reader: FillReader,
        position: int,
        end: int | None,
        chunked: bool = False,
        handoff: Handoff | None = None,
        resume: Resume | None = None,
    ) -> bool:
        """Body bytes [position, end) of a fill (to its end when `end` is None), as the
        leader writes them, with backpressure. True when the rest came straight from the
        origin and was relayed: the fill stopped being stored and handed this client the
        origin's response, or its leader died and `resume` asked the origin for the rest."""
        while end is None or position < end:
            data = reader.read(position, CHUNK if end is None else min(CHUNK, end - position))
            if data:
                position += len(data)
                conn.write(_chunk(data, chunked))
                await conn.drain()
                continue
            state, _ = reader.state()
            if state == COMPLETE:
                if not reader.read(position, 1):
                    if end is not None:
                        raise ConnectionAbortedError("the stored body is shorter than announced")
                    return False
                continue
            if state != FILLING:
                given = handoff.take() if handoff is not None else None
                if given is None and resume is not None and reader.leader_died():
                    rest = await resume(position)
                    if rest is not None:  # another worker's fill: this client goes on
                        await _relay(conn, rest, chunked)
                        return True
                if given is None:
                    conn.close_after = True
                    raise ConnectionAbortedError("origin body cut off")
                # Not stored after all (too big, no room): the rest from the origin.
                first, response = given
                conn.write(_chunk(first, chunked))
                await _relay(conn, response, chunked)
                return True
            await self.filler.wait(reader.key_hash)
        return False

    async def fill(
        self,
        conn: Connection,
        request: Request,
        fetched: Fetched,
        policy: CachePolicy,
        xcache: str,
    ) -> None:
        reader, head = fetched.reader, fetched.head
        try:
            pairs = [(n, v) for n, v in head["headers"]]
            hmap = header_map(pairs)
            fields = client_headers(pairs, hmap, policy)
            length = head["length"]
            cache_fields = _cache_fields(conn, xcache, _fill_age(head))
            ranges = _fill_ranges(request, head, hmap)
            if ranges == "unsatisfiable":
                conn.write(
                    _unsatisfiable(length) + cache_fields + _framing(conn, request) + b"\r\n"
                )
                return
            if ranges:
                tail = cache_fields + _framing(conn, request)
                return await self._fill_ranges(conn, fetched, fields, ranges, tail)
            no_body = request.method == "HEAD" or head["status"] in _NO_BODY_STATUSES
            chunked = length is None and not no_body and request.version != "1.0"
            if length is not None:
                framing = b"Content-Length: %d\r\n" % length
            elif chunked:
                framing = b"Transfer-Encoding: chunked\r\n"
            else:
                framing = b""
                conn.close_after = True
            conn.write(
                status_line(head["status"], head["reason"])
                + encode_headers(fields)
                + framing
                + cache_fields
                + _framing(conn, request)
                + b"\r\n"
            )
            if no_body:
                return
            fill = fetched.fill
            resume = None if fill is None else partial(self.filler.resume, fill, head)
            if await self._stream_fill(conn, reader, 0, None, chunked, fetched.handoff, resume):
                return  # the rest came from the origin, with its end (_relay)
            if chunked:
                conn.write(b"0\r\n\r\n")
        finally:
            reader.close()
            if fetched.handoff is not None:
                fetched.handoff.close()

    # -- straight from the origin -----------------------------------------------------

    async def origin_response(
        self,
        conn: Connection,
        request: Request,
        response: aiohttp.ClientResponse,
        xcache: str,
        policy: CachePolicy,
    ) -> None:
        """A response that is not stored, relayed as it arrives, with the same header
        rules as a stored one (`entry.client_headers`; the zone's `expiry` for GET and
        HEAD only: no other method's answer is reused)."""
        try:
            pairs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.raw_headers]
            reusable = request.method in ("GET", "HEAD")
            fields = client_headers(pairs, header_map(pairs), policy if reusable else None)
            length = response.content_length
            no_body = (
                request.method == "HEAD"
                or response.status in _NO_BODY_STATUSES
                or (100 <= response.status < 200)
            )
            chunked = length is None and not no_body and request.version != "1.0"
            framing = b""
            if length is not None:
                framing = b"Content-Length: %d\r\n" % length
            elif chunked:
                framing = b"Transfer-Encoding: chunked\r\n"
            elif not no_body:
                conn.close_after = True
            conn.write(
                status_line(response.status, response.reason)
                + encode_headers(fields)
                + framing
                + _cache_fields(conn, xcache, None)
                + _framing(conn, request)
                + b"\r\n"
            )
            if not no_body:
                await _relay(conn, response, chunked)
        finally:
            response.release()


def _unsatisfiable(size: int) -> bytes:
    """The head of a 416 (RFC 9110 §15.5.17), without its last CRLF."""
    return (
        status_line(416)
        + b"Content-Range: %s\r\nContent-Length: 0\r\n" % unsatisfiable_content_range(size).encode()
    )


def _partial_head(
    fields: list[tuple[str, str]], ranges: list[tuple[int, int]], size: int
) -> tuple[bytes, tuple[list[bytes], bytes] | None]:
    """A 206's head for `ranges` of a representation of `size` bytes, without its last
    CRLF (RFC 9110 §15.3.7), and for several ranges the multipart delimiters: what goes
    before each range, and the closing one."""
    if len(ranges) == 1:
        first, last = ranges[0]
        return (
            status_line(206)
            + encode_headers(fields)
            + b"Content-Range: %s\r\n" % content_range(first, last, size).encode()
            + b"Content-Length: %d\r\n" % (last - first + 1)
        ), None
    content_type = next((v for n, v in fields if n.lower() == "content-type"), None)
    boundary = secrets.token_hex(12)
    parts, closing = multipart_parts(ranges, size, content_type, boundary)
    return (
        status_line(206)
        + encode_headers([(n, v) for n, v in fields if n.lower() != "content-type"])
        + b"Content-Type: multipart/byteranges; boundary=%s\r\n" % boundary.encode()
        + b"Content-Length: %d\r\n" % multipart_length(ranges, parts, closing)
    ), (parts, closing)


def _fill_ranges(
    request: Request, head: dict[str, Any], hmap: dict[str, str]
) -> list[tuple[int, int]] | Literal["unsatisfiable"] | None:
    """The ranges a GET asks of a 200 being filled, when its length is known (RFC 9110
    §14.2, §13.1.5 against the validators the origin sent); None: the whole body."""
    length = head["length"]
    if (
        "range" not in request.hmap
        or request.method != "GET"
        or head["status"] != 200
        or length is None
    ):
        return None
    etag, last_modified = hmap.get("etag"), parse_http_date(hmap.get("last-modified"))
    if not if_range_ok(request.hmap.get("if-range"), etag=etag, last_modified=last_modified):
        return None
    return parse_range(request.hmap["range"], length)


def _chunk(data: bytes, chunked: bool) -> bytes:
    """`data` as the client's framing carries it (RFC 9112 §7.1: one chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data) if chunked and data else data


async def _relay(conn: Connection, response: aiohttp.ClientResponse, chunked: bool) -> None:
    """The rest of the origin's body to the client at the client's pace, then the end."""
    try:
        async for chunk in response.content.iter_chunked(CHUNK):
            conn.write(_chunk(chunk, chunked))
            await conn.drain()
        if chunked:
            conn.write(b"0\r\n\r\n")
    except aiohttp.ClientError as exc:
        conn.close_after = True
        raise ConnectionAbortedError(f"origin body cut off: {exc}") from exc
    finally:
        response.release()


def _fill_age(head: dict[str, Any]) -> float:
    """RFC 9111 §4.2.3 for a response still arriving: the origin's Age, corrected."""
    return current_age(
        header_map(head["headers"]),
        request_time=head["request_time"],
        response_time=head["response_time"],
        now=time.time(),
    )
