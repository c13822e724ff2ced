"""Serving large objects from slices (edge/slicing.py decides what a slice is; this
executes it). Each slice a response needs is looked up, and filled when missing or
stale, as any object is (fills.py: one origin request per slice for the whole node);
the client's response is written from the slices in order, each as soon as its first
bytes are there, so a seek into a cold object waits for one slice, not for the bytes
before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pullzone.cache.bodies import FillReader
from pullzone.cache.key import key_hash, split_target
from pullzone.cache.stored import ResponseHead
from pullzone.edge.decisions import FETCH_MISS, Deliver, ServeStale, on_stored
from pullzone.edge.deliver import Deliverer, fill_age
from pullzone.edge.entry import Entry
from pullzone.edge.fills import Filler, FillRequest
from pullzone.edge.http import Exchange, Request
from pullzone.edge.labels import XCache
from pullzone.edge.lookup import Lookup
from pullzone.edge.outcomes import Cached, Fetched, Outcome, Passed, Revalidated, Withdrawn
from pullzone.edge.slicing import Identity, Slice, first_wanted, identity, slice_at, slices_of
from pullzone.edge.state import ZoneView
from pullzone.edge.stats import WorkerStats
from pullzone.edge.writer import (
    body_framing,
    client_headers,
    partial_head,
    response_head,
    unsatisfiable_head,
)
from pullzone.spec.conditional import if_range_ok
from pullzone.spec.dates import parse_http_date
from pullzone.spec.headers import header_map
from pullzone.spec.ranges import UNSATISFIABLE, parse_range

_CONDITIONS = ("if-none-match", "if-modified-since", "if-match", "if-unmodified-since")

# The first slice's fill, when it was no slice after all (the object fits in one, the
# origin ignores ranges, or it answered an error): delivered as any fill's outcome.
NotSliced = tuple[FillRequest, Outcome]


@dataclass(slots=True)
class Piece:
    """One slice in hand: stored (an Entry) or arriving (the reader of its fill)."""

    slice: Slice
    identity: Identity
    head: ResponseHead
    source: Entry | FillReader
    xcache: XCache  # HIT or STALE from the cache, MISS from a fill

    def close(self) -> None:
        if isinstance(self.source, FillReader):
            self.source.close()


class Slicer:
    def __init__(
        self,
        lookup: Lookup,
        filler: Filler,
        deliver: Deliverer,
        stats: WorkerStats,
        accessed: Callable[[str, float], None],
        lru_interval: float,
    ) -> None:
        self.lookup = lookup
        self.filler = filler
        self.deliver = deliver
        self.stats = stats
        self.accessed = accessed
        self.lru_interval = lru_interval
        self._tasks: set[asyncio.Task[Piece]] = set()  # slices read ahead, then abandoned

    async def serve(
        self,
        view: ZoneView,
        key: str,
        target: str,
        request: Request,
        conn: Exchange,
        stored: Entry | None,
    ) -> NotSliced | None:
        """Answer `request` (GET or HEAD) for the object under `key` from its slices;
        `stored` is what its key holds (its first slice, or nothing). None once answered;
        the first slice's fill when the object is not sliced, for the caller to deliver."""
        for _ in range(2):
            first = await self._obtain(view, key, target, request, conn, self._start(request))
            if not isinstance(first, Piece):
                return first
            # The first slice stored, which the rest must be of the same version as:
            # `stored` when it is the one just obtained, else what is stored now.
            if first.slice.index:
                stored = self.lookup.find(view, key, request.hmap)
            known = identity(stored.obj.head) if stored is not None else None
            if known is not None and known != first.identity:
                # The object changed at the origin: the slices stored are of the version
                # before. When the new one is the first slice itself, the others go;
                # else all go and the object is fetched anew.
                if first.slice.index == 0:
                    self._discard(key, known.length, keep_first=True)
                else:
                    first.close()
                    self._discard(key, known.length)
                    continue
            await self._answer(view, key, target, request, conn, first)
            return None
        self.deliver.error(conn, request, 502, "the origin's object changed while sliced")
        return None

    @staticmethod
    def _start(request: Request) -> Slice:
        """The slice with the first byte the request asks for: before the object's length
        is known, only a first-pos says where (slicing.first_wanted)."""
        if request.method != "GET":
            return Slice(0)
        return slice_at(first_wanted(request.hmap.get("range")))

    async def _answer(
        self,
        view: ZoneView,
        key: str,
        target: str,
        request: Request,
        conn: Exchange,
        first: Piece,
    ) -> None:
        """The response, from `first` and the slices after it."""
        hmap = request.hmap
        pieces = {first.slice.index: first}
        try:
            entry = first.source if isinstance(first.source, Entry) else None
            if entry is not None and any(name in hmap for name in _CONDITIONS):
                condition = entry.precondition(hmap)  # RFC 9110 §13.2.2
                if condition == 304:
                    tail = self.deliver.tail(conn, request, first.xcache, entry.age(time.time()))
                    conn.write(entry.not_modified_head() + tail + b"\r\n")
                    return
                if condition == 412:
                    self.deliver.error(conn, request, 412, "precondition failed")
                    return
            length = first.identity.length
            stored_fields = header_map(first.head.headers)
            ranges = None
            if "range" in hmap and request.method == "GET":
                last_modified = parse_http_date(stored_fields.get("last-modified"))
                etag = stored_fields.get("etag")
                if if_range_ok(hmap.get("if-range"), etag=etag, last_modified=last_modified):
                    ranges = parse_range(hmap["range"], length)
            age = entry.age(time.time()) if entry is not None else fill_age(first.head)
            tail = self.deliver.tail(conn, request, first.xcache, age)
            if ranges == UNSATISFIABLE:
                conn.write(unsatisfiable_head(length, tail))
                return
            fields = [
                (n, v)
                for n, v in client_headers(
                    first.head.headers, stored_fields, view.zone.cache, view.edits
                )
                if n.lower() != "content-range"
            ]
            multipart = None
            if ranges:
                head, multipart = partial_head(fields, ranges, length, tail)
            else:
                ranges = [(0, length - 1)]
                framing = body_framing(request.method, 200, length, request.version)
                head = response_head(200, "OK", fields, framing, tail)
            conn.write(head)
            if request.method == "HEAD":
                return
            ahead: dict[int, asyncio.Task[Piece]] = {}
            try:
                for i, (low, high) in enumerate(ranges):
                    if multipart is not None:
                        conn.write(multipart[0][i])
                    wanted = slices_of(low, high, first.slice.size)
                    for index in wanted:
                        piece = pieces.pop(index, None)
                        if piece is None:
                            task = ahead.pop(index, None)
                            piece = await (
                                task
                                or self._next(
                                    view, key, target, request, conn, Slice(index), first.identity
                                )
                            )
                        if index + 1 in wanted and index + 1 not in pieces:
                            # One slice ahead: its origin round trip overlaps this one's
                            # bytes, so a whole GET does not wait between slices.
                            ahead[index + 1] = asyncio.get_running_loop().create_task(
                                self._next(
                                    view,
                                    key,
                                    target,
                                    request,
                                    conn,
                                    Slice(index + 1),
                                    first.identity,
                                )
                            )
                        try:
                            start = piece.slice.first
                            await self.deliver.part(
                                conn,
                                piece.source,
                                max(low, start) - start,
                                min(high, piece.slice.last) - start,
                            )
                        finally:
                            piece.close()
                if multipart is not None:
                    conn.write(multipart[1])
            finally:
                for task in ahead.values():  # not cancelled: it may lead a slice's fill
                    self._tasks.add(task)
                    task.add_done_callback(self._abandoned)
        finally:
            for piece in pieces.values():
                piece.close()

    def _abandoned(self, task: asyncio.Task[Piece]) -> None:
        """A slice read ahead that the response did not get to: let it go."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is None:
            task.result().close()

    async def _next(
        self,
        view: ZoneView,
        key: str,
        target: str,
        request: Request,
        conn: Exchange,
        wanted: Slice,
        expected: Identity,
    ) -> Piece:
        """A later slice of the response being written; one that is missing or of another
        version cuts the response: its head is out, and no slice of another version is
        ever stitched to it (RFC 9111 §3.4)."""
        piece = await self._obtain(view, key, target, request, conn, wanted)
        if isinstance(piece, Piece) and piece.identity == expected:
            return piece
        if isinstance(piece, Piece):
            piece.close()
            self._discard(key, max(expected.length, piece.identity.length))
        else:
            _release(piece[1])
        conn.close_after = True
        raise ConnectionAbortedError(f"slice {wanted.index} of {target} is not of the object")

    async def _obtain(
        self,
        view: ZoneView,
        key: str,
        target: str,
        request: Request,
        conn: Exchange,
        wanted: Slice,
    ) -> Piece | NotSliced:
        """Slice `wanted` from the cache, or from a fill of it (one for the node)."""
        slice_key = wanted.key(key)
        stored = self.lookup.find(view, slice_key, request.hmap)
        now = time.time()
        asked = on_stored(
            request, view.zone.cache, stored, now, revalidate_all=self.filler.state.revalidate_all
        )
        path, query = split_target(target)
        job = FillRequest(
            view,
            slice_key,
            key_hash(slice_key),
            path,
            query,
            target,
            request,
            conn.client,
            stored,
            FETCH_MISS if isinstance(asked, Deliver) else asked,
            wanted,
            conn.interim,  # until the head is written (http.py, h2.py)
        )
        if isinstance(asked, Deliver):
            assert stored is not None  # only what is stored is delivered
            return self._stored(wanted, stored, XCache.HIT, now) or (job, Cached(stored))
        if stored is not None:
            xcache = stored.while_refreshing(request.hmap, now)  # RFC 5861, prefresh
            piece = None if xcache is None else self._stored(wanted, stored, xcache, now)
            if piece is not None:
                self.filler.refresh(job)
                return piece
        outcome = await self.filler.obtain(job)
        if isinstance(outcome, Fetched):
            if outcome.handoff is not None:
                outcome.handoff.close()  # a slice that stops being stored is cut
            part = identity(outcome.head)
            if part is not None:
                return Piece(wanted, part, outcome.head, outcome.reader, XCache.MISS)
        elif isinstance(outcome, Cached | Revalidated):
            if isinstance(outcome, Revalidated):
                self.lookup.memory.drop(slice_key)
            entry = (
                outcome.entry
                if isinstance(outcome, Cached)
                else self.lookup.find(view, slice_key, request.hmap)
            )
            xcache = XCache.HIT if isinstance(outcome, Cached) else XCache.REVALIDATED
            piece = None if entry is None else self._stored(wanted, entry, xcache, now)
            if piece is not None:
                return piece
            if entry is None:
                return job, Passed(None)  # purged meanwhile: this client asks on its own
        elif isinstance(outcome, ServeStale) and stored is not None:
            piece = self._stored(wanted, stored, XCache.STALE, now)
            if piece is not None:
                return piece
        elif isinstance(outcome, Withdrawn):
            self.lookup.invalidated(outcome.generation)
            self.lookup.bodies.remove([outcome.obj.id])
            return job, Passed(None)
        elif isinstance(outcome, Passed) and outcome.response and outcome.response.status == 206:
            outcome.response.release()  # a part not to store is not what the client asked
            return job, Passed(None)
        return job, outcome

    def _stored(self, wanted: Slice, entry: Entry, xcache: XCache, now: float) -> Piece | None:
        """A stored slice as a piece (None: what is stored is not a slice)."""
        part = identity(entry.obj.head)
        if part is None:
            return None
        if now - entry.touched >= self.lru_interval:
            entry.touched = now
            self.accessed(entry.obj.id, now)
        if entry.body is None and entry.size > 0:
            entry.load_body()
        self.stats.sliced("served")
        return Piece(wanted, part, entry.obj.head, entry, xcache)

    def _discard(self, key: str, length: int, keep_first: bool = False) -> None:
        """Drop the stored slices of the object under `key` (all of them, or all but the
        first): they are not all of one version any more."""
        index = self.lookup.index
        ids = [
            obj.id
            for i in slices_of(0, max(length - 1, 0))
            if i or not keep_first
            for obj in index.variants(key_hash(Slice(i).key(key)))
        ]
        generation = 0
        for object_id in ids:
            generation = index.withdraw(object_id) or generation
        self.lookup.invalidated(generation)
        self.lookup.bodies.remove(ids)
        self.stats.sliced("mismatched")


def _release(outcome: Outcome) -> None:
    """Free what an outcome that will not be delivered holds."""
    if isinstance(outcome, Fetched):
        outcome.reader.close()
    elif isinstance(outcome, Passed) and outcome.response is not None:
        outcome.response.release()
