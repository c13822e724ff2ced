"""Cache fills: one origin request per object however many clients miss it at once.

The first request for a missing or expired object claims the fill (bodies.FillWriter) and
fetches from the origin in a task of its own; the body goes to disk at origin speed, and
every client, the first one included, reads the growing file. A slow or vanished client
therefore never slows the fill, and memory does not grow with the object's size. A small
body (WHOLE) is read whole first, stored in one write, and its first client answered from
memory; the others read the file.

A fill is bounded (edge/bounds.py): it holds cache budget for its bytes before writing them
(evicting to make room), stops storing past --max-object-size, and stops altogether once
nobody reads it and finishing is not worth it. A fill that stops storing hands the origin
response to the client that started it, which streams the rest straight from the origin;
other clients of that fill are cut.

The Filler executes decisions (decisions.py): which request to send is `on_stored`'s,
what to do with the answer `on_origin_response`'s; the Filler does the fetching, the
file and the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from pullzone.cache.batch import IndexWrites
from pullzone.cache.bodies import (
    COMPLETE,
    FAILED,
    FILLING,
    PASS,
    REVALIDATED,
    FillReader,
    FillWriter,
    unique_hex,
)
from pullzone.cache.index import Fill
from pullzone.cache.stored import ResponseHead, StoredObject
from pullzone.edge.bounds import (
    Limits,
    Progress,
    Verdict,
    note_readers,
    reservation,
    verdict,
)
from pullzone.edge.budget import Budget, Pool
from pullzone.edge.decisions import (
    Deliver,
    Fail,
    Fetch,
    Pass,
    Revalidate,
    ServeStale,
    Store,
    Withdraw,
    on_origin_failure,
    on_origin_response,
    on_stored,
    validators,
)
from pullzone.edge.disk import DiskWrites
from pullzone.edge.encoding import stored_head
from pullzone.edge.entry import Entry
from pullzone.edge.http import Request
from pullzone.edge.labels import NotStored
from pullzone.edge.lookup import Lookup
from pullzone.edge.origin import Interim, Origin, OriginError, forward_headers, response_fields
from pullzone.edge.outcomes import (
    Cached,
    Fetched,
    Handoff,
    Outcome,
    Passed,
    Revalidated,
    Whole,
    Withdrawn,
)
from pullzone.edge.progress import FillSignals
from pullzone.edge.slicing import Slice, received
from pullzone.edge.state import ZoneView
from pullzone.edge.stats import WorkerStats
from pullzone.edge.upstream import UpstreamError, UpstreamResponse
from pullzone.spec.headers import header_map
from pullzone.spec.vary import vary_values

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# A response of at most this Content-Length is read whole before it is stored and answered
# (Filler._store_whole): it comes with its head, or just behind it, and so costs one write,
# one insert and no file reader; a larger one streams to its clients as it arrives.
WHOLE = 64 * 1024
# A worker that could not claim a background refresh (another one leads it) tries again
# after this long at the soonest; each STALE answer meanwhile would otherwise try a claim.
REFRESH_RETRY = 1.0
REFRESH_MEMO = 4096  # keys remembered for that, at most (then forgotten all at once)


@dataclass(slots=True)
class FillRequest:
    view: ZoneView
    key: str
    key_hash: str
    path: str
    query: str
    target: str
    request: Request
    peer: str
    stored: Entry | None  # what the cache holds for the request (looked up again when led)
    asked: Revalidate | Fetch  # how the origin is asked (decided again when led)
    slice: Slice | None = None  # one slice of a large object, by range (edge/slicing.py)
    # The asking client's, told of the origin's interim responses (103 Early Hints) if this
    # request leads the fill; None for a background refresh. They are never stored: they
    # are about this one exchange (RFC 9110 §15.2, RFC 8297), not the representation.
    interim: Interim | None = None
    # The key's index rows as read under the fill's claim: those its insert may replace.
    rows: list[StoredObject] | None = None


class Filler:
    def __init__(
        self,
        lookup: Lookup,
        origin: Origin,
        limits: Limits,
        stats: WorkerStats,
        signals: FillSignals,
    ) -> None:
        self.lookup = lookup
        self.index = lookup.index
        self.bodies = lookup.bodies
        self.writes = IndexWrites(self.index.reopened())
        self.budget = Budget(self.writes, self.bodies, limits.max_cache, stats)
        self.pool = Pool(self.budget)
        self.state = lookup.state
        self.origin = origin
        self.limits = limits
        self.stats = stats
        self.signals = signals
        self.disk = DiskWrites()
        self._tasks: set[asyncio.Task[Any]] = set()  # fills led, copies, refreshes
        self._refresh_after: dict[str, float] = {}  # key hash → monotonic time

    async def obtain(self, fill: FillRequest) -> Outcome:
        """Lead the fill, or follow the one in progress (in this process or another)."""
        for _ in range(8):
            writer = FillWriter.claim(self.bodies, fill.key_hash)
            if writer is not None:
                return await self._led(writer, fill)
            reader = FillReader.open(self.bodies, fill.key_hash)
            if reader is None:
                continue  # it finished between the two calls: claim again
            outcome = await self._follow(reader, fill)
            if outcome is not None:
                return outcome
        return Passed(None)

    async def _led(self, writer: FillWriter, fill: FillRequest) -> Outcome:
        """Lead the fill `writer` claimed. When it goes to the origin, it does so in a
        task of its own: the client that asked may leave (its task cancelled) while the
        origin is asked, and the fill goes on for the requests that follow it; what it
        would have given that client is freed."""
        cached = self._decide(writer, fill)
        if cached is not None:
            return cached
        task = asyncio.get_running_loop().create_task(self._leading(writer, fill))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_free_unused)
            raise

    def _decide(self, writer: FillWriter, fill: FillRequest) -> Cached | None:
        """Decided again under the claim: a fill may have completed between the
        request's lookup and its claim, and must not be fetched twice; and a
        revalidation must send the validators of what is stored now. Cached when what
        is stored now may be delivered: the claim ends at once, in the same call (other
        requests of this worker that missed too never see it, and need not follow it);
        None when the origin must be asked (`fill.stored`, `fill.asked` say how)."""
        try:
            fill.rows = self.index.variants(fill.key_hash)
            stored = self.lookup.reload(fill.view, fill.key, fill.request.hmap, fill.rows)
        except BaseException:
            self._end(writer, fill, FAILED, 502)
            raise
        asked = on_stored(
            fill.request,
            fill.view.zone.cache,
            stored,
            time.time(),
            revalidate_all=self.state.revalidate_all,
        )
        if isinstance(asked, Deliver):
            assert stored is not None  # only what is stored is delivered
            writer.end(REVALIDATED)
            return Cached(stored)
        fill.stored, fill.asked = stored, asked
        return None

    async def _leading(self, writer: FillWriter, fill: FillRequest) -> Outcome:
        """Ask the origin for the fill `_decide` left to it, and execute its answer."""
        try:
            return await self._lead(writer, fill)
        except BaseException:
            self._end(writer, fill, FAILED, 502)  # a no-op once the fill ended itself
            raise

    # -- background refreshes (RFC 5861 stale-while-revalidate, the zone's prefresh) ----

    def refresh(self, fill: FillRequest) -> None:
        """Refresh what is stored for `fill` in the background, once for the node: the
        fill's claim makes it one origin request in all workers, and a claim held
        already is a fill under way, which is the refresh. The request that asked is
        answered from the cache meanwhile, and does not wait for any of this."""
        now = time.monotonic()
        if now < self._refresh_after.get(fill.key_hash, 0.0):
            return
        if len(self._refresh_after) >= REFRESH_MEMO:
            self._refresh_after.clear()
        self._refresh_after[fill.key_hash] = now + REFRESH_RETRY
        try:
            writer = FillWriter.claim(self.bodies, fill.key_hash)
        except OSError as exc:  # no file descriptor or no disk for the claim: later
            log.warning("no background refresh of %s: %s", fill.target, exc)
            return
        if writer is None:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(writer, fill))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, writer: FillWriter, fill: FillRequest) -> None:
        result = "failed"
        pumped = False  # a fill whose body is being copied: its pump ends it
        try:
            outcome = self._decide(writer, fill) or await self._leading(writer, fill)
            if isinstance(outcome, Fetched):
                pumped = True
                result = "fetched" if await self._drain(fill, outcome) else "failed"
            elif isinstance(outcome, Whole):
                result = "fetched" if outcome.stored else "failed"
            elif isinstance(outcome, Revalidated):
                result = "revalidated"
            elif isinstance(outcome, Cached):
                result = "fresh"  # another worker refreshed it first
            elif isinstance(outcome, Withdrawn):
                self.lookup.invalidated(outcome.generation)
                self.bodies.remove([outcome.obj.id])
                result = "withdrawn"
            elif isinstance(outcome, Passed):
                # The origin's answer may not be stored: the stale copy stays for what is
                # left of its own window, and nothing else changes.
                if outcome.response is not None:
                    outcome.response.release()
                result = "not_stored"
        except (OSError, sqlite3.Error) as exc:  # a full disk: the stale copy stays
            log.warning("background refresh of %s failed: %s", fill.target, exc)
        finally:
            if not pumped:
                writer.end()  # a no-op once the fill ended itself
            self.lookup.memory.drop(fill.key)  # the next request reads what is stored now
            self.stats.refreshed(result)

    async def _drain(self, fill: FillRequest, fetched: Fetched) -> bool:
        """Read a background fill to its end: an open reader keeps it from being
        abandoned as a fill nobody reads (edge/bounds.py). True when it was stored."""
        if fetched.handoff is not None:
            fetched.handoff.close()  # no client takes over a fill that stops storing
        reader = fetched.reader
        try:
            state = reader.state()[0]
            while state == FILLING:
                await self.signals.wait(fill.key_hash)
                state = reader.state()[0]
            return state == COMPLETE
        finally:
            reader.close()

    def _forwarded(self, fill: FillRequest) -> list[tuple[str, str]]:
        """The client's request headers as a fill sends them to the origin."""
        request = fill.request
        zone = fill.view.zone
        return forward_headers(
            request.headers,
            request.hmap,
            zone,
            fill.peer,
            shared=True,
            cdn_id=self.origin.cdn_id,
            scheme=request.scheme,
        )

    def _end(self, writer: FillWriter, fill: FillRequest, state: int, status: int = 0) -> None:
        """The fill is decided: its readers learn how it ended."""
        writer.end(state, status)
        self.signals.wake(fill.key_hash)

    # -- leader -----------------------------------------------------------------------

    async def _lead(self, writer: FillWriter, fill: FillRequest) -> Outcome:
        zone = fill.view.zone
        fill_seq = self.state.applied
        headers = self._forwarded(fill)
        stored = fill.stored
        if isinstance(fill.asked, Revalidate) and stored is not None:
            headers += validators(stored)
        if fill.slice is not None:
            headers.append(fill.slice.range_field())
        request_time = time.time()
        try:
            response = await self.origin.request(
                zone, "GET", fill.target, headers, interim=fill.interim, shield_seq=fill_seq
            )
        except OriginError as exc:
            self._end(writer, fill, FAILED, exc.status)
            return on_origin_failure(stored, zone.cache, exc.status, time.time())
        head = ResponseHead(
            status=response.status,
            reason=response.reason or "",
            # `edge.stripcookie`: stored and forwarded without Set-Cookie, so storable.
            headers=fill.view.edits.strip(response_fields(response)),
            request_time=request_time,
            response_time=time.time(),
            length=response.content_length,
        )
        if fill.slice is not None:
            part = received(fill.slice, head)
            if part is None:  # not a slice to store: the client asks on its own
                response.release()
                self.stats.not_stored(NotStored.UNSLICEABLE)
                self._end(writer, fill, PASS)
                return Passed(None, NotStored.UNSLICEABLE)
            head = part
        decision = on_origin_response(
            fill.request,
            fill.path,
            zone.cache,
            stored,
            fill.asked,
            head,
            self.limits,
            sliced=fill.slice is not None,
        )
        if isinstance(decision, Store):
            head = stored_head(zone.edge.compression, decision.head)
            if fill.slice is None and head.length is not None and head.length <= WHOLE:
                try:
                    body = await response.read()
                except UpstreamError as exc:  # cut off: nothing was promised to anyone yet
                    log.warning("fill of %s failed: %s", fill.target, exc)
                    self._end(writer, fill, FAILED, 502)
                    return on_origin_failure(stored, zone.cache, 502, time.time())
                finally:
                    response.release()
                return await self._store_whole(writer, fill, head, body, fill_seq)
            return await self._store(writer, fill, response, head, fill_seq)
        if isinstance(decision, Pass):
            if decision.reason is NotStored.TOO_BIG:
                log.warning(
                    "not caching %s: Content-Length %s over the size limit",
                    fill.target,
                    head.length,
                )
            self.stats.not_stored(decision.reason)
            self._end(writer, fill, PASS)
            return Passed(response, decision.reason)
        response.release()
        if isinstance(decision, ServeStale | Fail):
            self._end(writer, fill, FAILED, head.status)
            return decision
        assert stored is not None  # a 304 is taken only for what was stored (decisions.py)
        updated = dataclasses.replace(
            stored.obj, head=stored_head(zone.edge.compression, decision.head), stored_seq=fill_seq
        )
        if isinstance(decision, Withdraw):
            # No later request may be served what this one made of the stored response.
            self.stats.not_stored(decision.reason)
            generation = self.index.withdraw(updated.id)
            self._end(writer, fill, PASS)
            return Withdrawn(updated, generation)
        self.index.refresh(updated, fill_seq)
        self._end(writer, fill, REVALIDATED)
        return Revalidated()

    async def _store(
        self,
        writer: FillWriter,
        fill: FillRequest,
        response: UpstreamResponse,
        head: ResponseHead,
        fill_seq: int,
    ) -> Outcome:
        """Write the head to the fill file and copy the body behind it, in a task of its
        own; the caller reads the file as it grows."""
        fill_id = unique_hex(8)
        progress = Progress(head.length)
        if not await self._begin(writer, fill, head, b"", fill_id, progress):
            return Passed(response, NotStored.NO_ROOM)
        reader = FillReader.of_leader(writer, fill.key_hash, head)
        handoff = Handoff()
        task = asyncio.get_running_loop().create_task(
            self._pump(writer, response, fill, head, fill_seq, fill_id, progress, handoff)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.signals.wake(fill.key_hash)
        return Fetched(reader, head, handoff)

    async def _begin(
        self,
        writer: FillWriter,
        fill: FillRequest,
        head: ResponseHead,
        body: bytes,
        fill_id: str,
        progress: Progress,
    ) -> bool:
        """Hold the cache budget of a fill of known length and write its head (and the
        body at hand); False, the fill ended, when the disk or the cache is full."""
        try:
            if head.length is not None and not await self._hold(fill_id, progress, head.length):
                raise OSError("no room in the cache")
            writer.write_head(head, body)
        except (OSError, sqlite3.Error) as exc:
            log.warning("not caching %s: %s", fill.target, exc)
            self.stats.not_stored(NotStored.NO_ROOM)
            self._release(fill_id, progress)
            self._end(writer, fill, PASS)
            return False
        return True

    async def _store_whole(
        self, writer: FillWriter, fill: FillRequest, head: ResponseHead, body: bytes, fill_seq: int
    ) -> Outcome:
        """A small response read whole (`WHOLE`): written to the fill file in one write,
        indexed, and answered from memory: no copy task and no reader of the file (what
        `_store` and `_pump` do for a body still arriving)."""
        view = fill.view
        obj = StoredObject(
            id=self.bodies.new_id(),
            key_hash=fill.key_hash,
            zone_id=view.zone.id,
            path=fill.path,
            query=fill.query,
            head=head,
            body_offset=0,
            size=len(body),
            stored_seq=fill_seq,
        )
        fill_id = unique_hex(8)
        progress = Progress(head.length)
        if not await self._begin(writer, fill, head, body, fill_id, progress):
            return Whole(self.lookup.fetched(view, obj, body), stored=False)
        obj.body_offset = writer.body_offset
        final = self.bodies.object_file(obj.id)
        try:
            writer.complete(final)
        except OSError as exc:  # no room for the name: the client still gets the body
            log.warning("not caching %s: %s", fill.target, exc)
            self._release(fill_id, progress)
            self._end(writer, fill, COMPLETE)
            return Whole(self.lookup.fetched(view, obj, body), stored=False)
        try:  # the client that asked may leave meanwhile: this fill is a task of its own
            replaced = await self.writes.insert(
                self._indexed(obj, writer.head_json, fill, fill_seq, fill_id, progress)
            )
        except sqlite3.Error as exc:  # the index's disk is full: no file no row names
            log.warning("not caching %s: %s", fill.target, exc)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(final)
            self._release(fill_id, progress)
            self._end(writer, fill, COMPLETE)
            return Whole(self.lookup.fetched(view, obj, body), stored=False)
        self.bodies.remove(r.id for r in replaced)
        self.lookup.memory.drop(fill.key)  # the copy just replaced: read anew
        self._end(writer, fill, COMPLETE)
        return Whole(self.lookup.fetched(view, obj, body))

    async def _hold(self, fill_id: str, progress: Progress, size: int) -> bool:
        """Hold `size` bytes of the cache for this fill (edge/budget.py): a small one of
        known length from the worker's pool, else in a row of its own, evicting others
        to make room."""
        if size <= progress.reserved:
            return True
        small = not progress.reserved and size == progress.length and self.pool.takes(size)
        if small and await self.pool.take(size):
            progress.reserved = progress.pooled = size
            return True
        if not await self.budget.reserve(fill_id, size - progress.pooled, size - progress.reserved):
            return False
        progress.reserved = size
        return True

    def _indexed(
        self,
        obj: StoredObject,
        meta: str,
        fill: FillRequest,
        fill_seq: int,
        fill_id: str,
        progress: Progress,
    ) -> Fill:
        """The insert of a whole fill, with the budget it held (pool, own row or both),
        its head as the fill file has it (`meta`: not encoded twice) and the rows it may
        replace, as read under its claim."""
        own = fill_id if progress.reserved > progress.pooled else None
        pooled = (self.pool.id, progress.pooled) if progress.pooled else None
        return Fill(obj, fill_seq, own, pooled, meta, fill.rows)

    def _release(self, fill_id: str, progress: Progress) -> None:
        """Give back what a fill that stored nothing held."""
        self.pool.give_back(progress.pooled)
        if progress.reserved > progress.pooled:
            self.budget.release(fill_id)

    async def _bound(
        self, writer: FillWriter, fill_id: str, progress: Progress, incoming: int
    ) -> Verdict:
        """May the fill write `incoming` more bytes (budget held)? (edge/bounds.py)"""
        now = time.monotonic()
        note_readers(progress, writer.has_readers(), now)
        decision = verdict(progress, incoming, self.limits, now)
        if decision is Verdict.KEEP:
            try:
                held = await self._hold(
                    fill_id, progress, reservation(progress, incoming, self.limits)
                )
            except sqlite3.Error:  # the index's disk is full: no room, the client goes on
                held = False
            if not held:
                return Verdict.NO_ROOM
        return decision

    async def _pump(
        self,
        writer: FillWriter,
        response: UpstreamResponse,
        fill: FillRequest,
        head: ResponseHead,
        fill_seq: int,
        fill_id: str,
        progress: Progress,
        handoff: Handoff,
    ) -> None:
        """Copy the origin body to the fill file; index it only if it arrived whole."""
        state = FAILED
        handed = False
        try:
            async for chunk in response.stream(CHUNK):
                decision = await self._bound(writer, fill_id, progress, len(chunk))
                if decision is not Verdict.KEEP:
                    handed = decision is not Verdict.ABANDONED and handoff.give(chunk, response)
                    log.warning("not caching %s: %s", fill.target, decision.value)
                    self.stats.not_stored(NotStored(decision.value))
                    return
                # In a thread (edge/disk.py); the wait also lets its readers send each
                # chunk as it comes, rather than a body the origin sent faster than the
                # loop turns being copied whole before the client's first byte.
                await self.disk.write(writer, chunk)
                progress.written = writer.written
                self.signals.wake(fill.key_hash)
            if head.length is not None and writer.written != head.length:
                raise UpstreamError("origin body shorter than Content-Length")
            obj = StoredObject(
                id=self.bodies.new_id(),
                key_hash=fill.key_hash,
                zone_id=fill.view.zone.id,
                path=fill.path,
                query=fill.query,
                head=head,
                body_offset=writer.body_offset,
                size=writer.written,
                stored_seq=fill_seq,
            )
            final = self.bodies.object_file(obj.id)
            writer.complete(final)
            try:
                replaced = await self.writes.insert(
                    self._indexed(obj, writer.head_json, fill, fill_seq, fill_id, progress)
                )
            except sqlite3.Error as exc:
                # The index's disk is full: the clients get the whole body, nothing is
                # stored, and no body file is left that no row names.
                log.warning("not caching %s: %s", fill.target, exc)
                os.unlink(final)
                self._release(fill_id, progress)
            else:
                self.bodies.remove(r.id for r in replaced)
                if head.status == 206:
                    self.stats.sliced("stored")
                # What this worker holds in memory for the key is the copy just replaced:
                # stale, and within a stale-while-revalidate window it would be served
                # again (STALE, the old body) instead of the one stored now.
                self.lookup.memory.drop(fill.key)
            state = COMPLETE
        except (UpstreamError, OSError, sqlite3.Error) as exc:
            # A body the origin cut off is never cached (README, How the edge caches); followers
            # that already sent headers see their connection cut, as the origin's was. So
            # does a full disk under a body of unknown length (one of known length has
            # its space reserved before its head is sent).
            log.warning("fill of %s failed: %s", fill.target, exc)
        finally:
            if state != COMPLETE:
                self._release(fill_id, progress)
            if not handed:
                response.release()
            self._end(writer, fill, state, 502)

    # -- followers --------------------------------------------------------------------

    async def resume(
        self, fill: FillRequest, head: ResponseHead, position: int
    ) -> UpstreamResponse | None:
        """The rest of a fill whose leader died mid-body, for one of its readers, straight
        from the origin: the bytes from `position` of the same representation (RFC 9110
        §14.2 Range, §13.1.5 If-Range on its entity tag or Last-Modified), or None when the
        origin cannot promise them (no validator, another representation, a failure)."""
        hmap = header_map(head.headers)
        etag = hmap.get("etag")
        validator = etag if etag and not etag.startswith("W/") else hmap.get("last-modified")
        if validator is None:
            return None
        zone = fill.view.zone
        headers = self._forwarded(fill)
        headers += [("Range", f"bytes={position}-"), ("If-Range", validator)]
        try:
            response = await self.origin.request(
                zone, "GET", fill.target, headers, shield_seq=self.state.applied
            )
        except OriginError:
            return None
        if response.status == 206 and (response.header("content-range") or "").startswith(
            f"bytes {position}-"
        ):
            return response
        response.release()
        return None

    async def _follow(self, reader: FillReader, fill: FillRequest) -> Outcome | None:
        """Wait for the leader's head; None means: look again (claim or re-read)."""
        keep = False
        try:
            while True:
                head = reader.read_head()
                if head is not None:
                    names = head.vary_names
                    if names and vary_values(names, fill.request.hmap) != head.vary_values:
                        return Passed(None)  # another variant: fetch on our own
                    keep = True
                    return Fetched(reader, head, follower=True)
                state, error = reader.state()
                if state == FAILED:
                    return on_origin_failure(
                        fill.stored, fill.view.zone.cache, error or 502, time.time()
                    )
                if state == PASS:
                    return Passed(None)
                if state in (REVALIDATED, COMPLETE):
                    return None
                await self.signals.wait(fill.key_hash)
        finally:
            if not keep:
                reader.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(sqlite3.Error):
            self.pool.close()
        self.disk.close()
        self.writes.close()


def _free_unused(task: asyncio.Task[Outcome]) -> None:
    """The outcome of a fill whose client left: what it holds for that client is freed
    (the fill itself goes on in its copy task, if it has one)."""
    if task.cancelled() or task.exception() is not None:
        return
    outcome = task.result()
    if isinstance(outcome, Fetched):
        outcome.reader.close()
        if outcome.handoff is not None:
            outcome.handoff.close()
    elif isinstance(outcome, Passed) and outcome.response is not None:
        outcome.response.release()
