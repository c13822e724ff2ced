"""Writing responses to clients: from a stored entry, from a fill in progress, from the
origin directly, or the edge's own answer. Conditional and Range requests are answered
here from the stored representation (RFC 9110 §13, §14). Every head is built by the one
response writer (writer.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

from pullzone.cache.bodies import COMPLETE, FILLING, FillReader
from pullzone.cache.stored import ResponseHead
from pullzone.edge.decisions import Answer, Challenge, Redirect
from pullzone.edge.entry import MEMORY_BODY_LIMIT, Entry
from pullzone.edge.http import Exchange, Request
from pullzone.edge.labels import XCache
from pullzone.edge.origin import response_fields
from pullzone.edge.outcomes import Fetched, Handoff
from pullzone.edge.progress import FillSignals
from pullzone.edge.switches import NO_EDITS, ResponseEdits, preflight_fields
from pullzone.edge.upstream import UpstreamError, UpstreamResponse
from pullzone.edge.writer import (
    ALLOW,
    LAST_CHUNK,
    body_framing,
    cache_fields,
    chunk,
    client_headers,
    connection_field,
    encode_headers,
    partial_head,
    plain,
    response_head,
    shield_outcome,
    status_line,
    unsatisfiable_head,
)
from pullzone.spec.conditional import if_range_ok
from pullzone.spec.dates import parse_http_date
from pullzone.spec.freshness import current_age
from pullzone.spec.headers import header_map
from pullzone.spec.ranges import parse_range
from pullzone.zones.model import CachePolicy

CHUNK = 256 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Resume:
    """The fill this client read stopped at `position` (its leader died): the rest must
    come from the origin (Filler.resume), framed as the head said."""

    position: int
    chunked: bool


class Deliverer:
    def __init__(self, signals: FillSignals, https_port: int = 443) -> None:
        self.signals = signals
        self.https_port = https_port

    def tail(
        self,
        conn: Exchange,
        request: Request,
        xcache: XCache,
        age: float | None,
        shield: XCache | None = None,
    ) -> bytes:
        """The fields that depend on this exchange, not on the response; `shield`: what
        the origin shield it came through answered (writer.shield_outcome)."""
        conn.xcache = xcache
        fields = cache_fields(xcache, age, shield)
        return fields + connection_field(conn.close_after, request.version)

    # -- the edge's own answers -------------------------------------------------------

    def answer(self, conn: Exchange, request: Request, answer: Answer) -> None:
        self.error(conn, request, answer.status, answer.message)

    def redirect(self, conn: Exchange, request: Request, redirect: Redirect) -> None:
        url = redirect.location(self.https_port)
        location = url.encode("latin-1", "replace")
        conn.write(
            plain(
                redirect.status,
                f"moved to {url}",
                head_only=request.method == "HEAD",
                fields=b"Location: %s\r\n" % location,
                tail=self.tail(conn, request, XCache.BYPASS, None),
            )
        )

    def challenge(self, conn: Exchange, request: Request, challenge: Challenge) -> None:
        """An ACME HTTP-01 answer (RFC 8555 §8.3): the key authorization, as it is."""
        body = challenge.key_authorization.encode()
        conn.write(
            status_line(200)
            + b"Content-Type: application/octet-stream\r\nCache-Control: no-store\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + self.tail(conn, request, XCache.BYPASS, None)
            + b"\r\n"
            + (b"" if request.method == "HEAD" else body)
        )

    def error(
        self, conn: Exchange, request: Request, status: int, message: str, fields: bytes = b""
    ) -> None:
        conn.write(
            plain(
                status,
                message,
                head_only=request.method == "HEAD",
                # OPTIONS answered here (RFC 9110 §9.3.7) and a 405 say what is allowed.
                fields=ALLOW if status in (200, 405) else fields,
                tail=self.tail(conn, request, XCache.BYPASS if status < 500 else XCache.MISS, None),
            )
        )

    def preflight(self, conn: Exchange, request: Request) -> None:
        """A CORS preflight answered at the edge (`edge.cors`): 204, no body."""
        conn.write(
            status_line(204)
            + encode_headers(preflight_fields(request.hmap))
            + self.tail(conn, request, XCache.BYPASS, None)
            + b"\r\n"
        )

    # -- from the cache ---------------------------------------------------------------

    def entry(
        self,
        conn: Exchange,
        request: Request,
        entry: Entry,
        xcache: XCache,
        now: float,
        shield: XCache | None = None,
    ) -> Awaitable[None] | None:
        """A stored response; `shield`: what the origin shield answered the fill that
        has just stored it (writer.shield_outcome)."""
        conn.xcache = xcache  # as _tail, inline: this is the HIT path
        tail = cache_fields(xcache, entry.age(now), shield) + connection_field(
            conn.close_after, request.version
        )
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
        size = entry.size
        if "range" in hmap and request.method == "GET" and entry.status == 200:
            ranges = None
            if if_range_ok(
                hmap.get("if-range"), etag=entry.etag, last_modified=entry.last_modified
            ):
                ranges = parse_range(hmap["range"], size)
            if ranges == "unsatisfiable":
                conn.write(unsatisfiable_head(size, tail))
                return None
            if ranges:
                return self._ranges(conn, entry, ranges, tail)
        head = entry.full_head + tail + b"\r\n"
        if request.method == "HEAD" or entry.status in _NO_BODY_STATUSES:
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
        self,
        conn: Exchange,
        request: Request,
        entry: Entry,
        xcache: XCache,
        now: float,
        shield: XCache | None = None,
    ) -> None:
        if entry.body is None and entry.size > 0:
            entry.load_body()
        pending = self.entry(conn, request, entry, xcache, now, shield)
        if pending is not None:
            await pending

    def _ranges(
        self, conn: Exchange, entry: Entry, ranges: list[tuple[int, int]], tail: bytes
    ) -> Awaitable[None] | None:
        head, multipart = partial_head(entry.client_fields(), ranges, entry.size, tail)
        conn.write(head)
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
        conn: Exchange,
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

    async def part(self, conn: Exchange, source: Entry | FillReader, first: int, last: int) -> None:
        """Body bytes [first, last] of a stored response or of a fill in progress (a slice
        of a large object: edge/slicer.py); the caller wrote the head."""
        if isinstance(source, FillReader):
            await self._stream_fill(conn, source, first, last + 1)
        elif source.body is not None:
            conn.write(source.body[first : last + 1])
            await conn.drain()
        else:
            await self._file(conn, source, [(first, last)], None)

    # -- from a fill in progress ------------------------------------------------------

    async def fill(
        self,
        conn: Exchange,
        request: Request,
        fetched: Fetched,
        policy: CachePolicy,
        xcache: XCache,
        edits: ResponseEdits = NO_EDITS,
    ) -> Resume | None:
        """The response a fill is storing, as its body arrives; a Resume when the fill's
        leader died before the end and the rest must come from the origin."""
        reader, head = fetched.reader, fetched.head
        try:
            hmap = header_map(head.headers)
            fields = client_headers(head.headers, hmap, policy, edits)
            ranges = _fill_ranges(request, head, hmap)
            length = head.length
            shield = shield_outcome(hmap)
            if ranges is not None and length is not None:
                tail = self.tail(conn, request, xcache, fill_age(head), shield)
                if ranges == "unsatisfiable":
                    conn.write(unsatisfiable_head(length, tail))
                else:
                    await self._fill_ranges(conn, fetched, fields, ranges, length, tail)
                return None
            framing = body_framing(request.method, head.status, length, request.version)
            if framing.close:
                conn.close_after = True
            tail = self.tail(conn, request, xcache, fill_age(head), shield)
            conn.write(response_head(head.status, head.reason, fields, framing, tail))
            if not framing.body:
                return None
            streamed = await self._stream_fill(
                conn, reader, 0, None, framing.chunked, fetched.handoff, fetched.follower
            )
            if isinstance(streamed, int):
                return Resume(streamed, framing.chunked)
            if streamed == "end" and framing.chunked:
                conn.write(LAST_CHUNK)
            return None
        finally:
            reader.close()
            if fetched.handoff is not None:
                fetched.handoff.close()

    async def _fill_ranges(
        self,
        conn: Exchange,
        fetched: Fetched,
        fields: list[tuple[str, str]],
        ranges: list[tuple[int, int]],
        length: int,
        tail: bytes,
    ) -> None:
        """A Range request on an object being filled: its 206 as soon as the ranges' bytes
        arrive, instead of the whole object from byte 0 (a cold seek in a large file)."""
        head, multipart = partial_head(fields, ranges, length, tail)
        conn.write(head)
        for i, (first, last) in enumerate(ranges):
            if multipart is not None:
                conn.write(multipart[0][i])
            await self._stream_fill(conn, fetched.reader, first, last + 1)
        if multipart is not None:
            conn.write(multipart[1])

    async def _stream_fill(
        self,
        conn: Exchange,
        reader: FillReader,
        position: int,
        end: int | None,
        chunked: bool = False,
        handoff: Handoff | None = None,
        resumable: bool = False,
    ) -> Literal["end", "relayed"] | int:
        """Body bytes [position, end) of a fill (to its end when `end` is None), as the
        leader writes them, with backpressure, then "end". When the fill stopped being
        stored and handed this client the origin's response, the rest is relayed from it
        here, framing included: "relayed". When its leader died before the end and the
        rest may be asked of the origin (`resumable`): the position it stopped at."""
        while end is None or position < end:
            data = reader.read(position, CHUNK if end is None else min(CHUNK, end - position))
            if data:
                if end is None and reader.is_last(position + len(data)):
                    # The last bytes go out once the fill has ended (its row is indexed,
                    # bodies.py): a client that has the whole body may rely on the object
                    # being stored, whatever happens to the worker next.
                    while reader.state()[0] == FILLING:
                        await self.signals.wait(reader.key_hash)
                position += len(data)
                conn.write(chunk(data, chunked))
                await conn.drain()
                continue
            state, _ = reader.state()
            if state == COMPLETE:
                if not reader.read(position, 1):
                    if end is not None:
                        raise ConnectionAbortedError("the stored body is shorter than announced")
                    return "end"
                continue
            if state != FILLING:
                given = handoff.take() if handoff is not None else None
                if given is None and resumable and reader.leader_died():
                    return position  # another worker's fill: this client goes on
                if given is None:
                    conn.close_after = True
                    raise ConnectionAbortedError("origin body cut off")
                # Not stored after all (too big, no room): the rest from the origin.
                first, response = given
                conn.write(chunk(first, chunked))
                await self.relay(conn, response, chunked)
                return "relayed"
            await self.signals.wait(reader.key_hash)
        return "end"

    # -- straight from the origin -----------------------------------------------------

    async def origin_response(
        self,
        conn: Exchange,
        request: Request,
        response: UpstreamResponse,
        xcache: XCache,
        policy: CachePolicy,
        edits: ResponseEdits = NO_EDITS,
    ) -> None:
        """A response that is not stored, relayed as it arrives, with the same header
        rules as a stored one (writer.client_headers; the zone's `expiry` for GET and
        HEAD only: no other method's answer is reused)."""
        try:
            pairs = edits.strip(response_fields(response))
            reusable = request.method in ("GET", "HEAD")
            hmap = header_map(pairs)
            fields = client_headers(pairs, hmap, policy if reusable else None, edits)
            framing = body_framing(
                request.method, response.status, response.content_length, request.version
            )
            if framing.close:
                conn.close_after = True
            tail = self.tail(conn, request, xcache, None, shield_outcome(hmap))
            conn.write(response_head(response.status, response.reason, fields, framing, tail))
            if framing.body:
                await self.relay(conn, response, framing.chunked)
        finally:
            response.release()

    async def relay(self, conn: Exchange, response: UpstreamResponse | None, chunked: bool) -> None:
        """The rest of the origin's body to the client at the client's pace, then the end;
        no response (the origin could not give the rest) cuts the message."""
        if response is None:
            conn.close_after = True
            raise ConnectionAbortedError("origin body cut off")
        try:
            async for data in response.stream(CHUNK):
                conn.write(chunk(data, chunked))
                await conn.drain()
            if chunked:
                conn.write(LAST_CHUNK)
        except UpstreamError as exc:
            conn.close_after = True
            raise ConnectionAbortedError(f"origin body cut off: {exc}") from exc
        finally:
            response.release()


def _fill_ranges(
    request: Request, head: ResponseHead, hmap: dict[str, str]
) -> list[tuple[int, int]] | Literal["unsatisfiable"] | None:
    """The ranges a GET asks of a 200 being filled, when its length is known (RFC 9110
    §14.2, §13.1.5 against the validators the origin sent); None: the whole body."""
    length = head.length
    if (
        "range" not in request.hmap
        or request.method != "GET"
        or head.status != 200
        or length is None
    ):
        return None
    etag, last_modified = hmap.get("etag"), parse_http_date(hmap.get("last-modified"))
    if not if_range_ok(request.hmap.get("if-range"), etag=etag, last_modified=last_modified):
        return None
    return parse_range(request.hmap["range"], length)


def fill_age(head: ResponseHead) -> float:
    """RFC 9111 §4.2.3 for a response still arriving: the origin's Age, corrected."""
    return current_age(
        header_map(head.headers),
        request_time=head.request_time,
        response_time=head.response_time,
        now=time.time(),
    )
