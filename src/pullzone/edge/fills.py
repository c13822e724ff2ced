"""Cache fills: one origin request per object however many clients miss it at once.

The first request for a missing or expired object claims the fill (bodies.FillWriter) and
fetches from the origin in a task of its own; the body goes to disk at origin speed, and
every client, the first one included, reads the growing file. A slow or vanished client
therefore never slows the fill, and memory does not grow with the object's size.

A fill is bounded (edge/bounds.py): it holds cache budget for its bytes before writing them
(evicting to make room), stops storing past --max-object-size, and stops altogether once
nobody reads it and finishing is not worth it. A fill that stops storing hands the origin
response to the client that started it, which streams the rest straight from the origin;
other clients of that fill are cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from pullzone.cache.bodies import (
    COMPLETE,
    FAILED,
    PASS,
    REVALIDATED,
    BodyStore,
    FillReader,
    FillWriter,
)
from pullzone.cache.eviction import make_room
from pullzone.cache.index import CacheIndex, StoredObject
from pullzone.edge.bounds import (
    Limits,
    Progress,
    Verdict,
    note_readers,
    reservation,
    storable_length,
    verdict,
)
from pullzone.edge.deception import disguised, personal
from pullzone.edge.entry import Entry
from pullzone.edge.http import Request
from pullzone.edge.origin import Origin, OriginError, forward_headers
from pullzone.edge.state import ZoneView
from pullzone.edge.stats import WorkerStats
from pullzone.spec.freshness import storable
from pullzone.spec.headers import HeaderMap, header_map, split_list
from pullzone.spec.vary import vary_names, vary_values

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
POLL_INTERVAL = 0.005  # followers in other processes look for progress this often

# RFC 9111 §3.2: a 304 updates the stored headers, except these, which describe the
# stored body (and framing) the 304 does not carry.
_KEEP_ON_UPDATE = frozenset(
    {"content-length", "content-encoding", "content-range", "transfer-encoding"}
)


class Handoff:
    """The origin response of a fill that stopped being stored, for the client that led
    the fill: it streams the rest from the origin once it has read the file's bytes."""

    def __init__(self) -> None:
        self._given: tuple[bytes, aiohttp.ClientResponse] | None = None
        self._open = True

    def give(self, chunk: bytes, response: aiohttp.ClientResponse) -> bool:
        """Hand on the response and the chunk read from it but not stored; False when the
        client has left (the caller then releases the response)."""
        if not self._open:
            return False
        self._given = (chunk, response)
        return True

    def take(self) -> tuple[bytes, aiohttp.ClientResponse] | None:
        given, self._given = self._given, None
        return given

    def close(self) -> None:
        """The client is done: nothing more is handed on; what was and is unused is freed."""
        self._open = False
        given = self.take()
        if given is not None:
            given[1].release()


@dataclass(slots=True)
class Fetched:
    """Follow this fill: its head is known, its body arrives in `reader`."""

    reader: FillReader
    head: dict[str, Any]
    handoff: Handoff | None = None  # the leader's own client only
    fill: FillRequest | None = None  # a follower's own request (to resume it: Filler.resume)


@dataclass(slots=True)
class Revalidated:
    entry_objects: list[StoredObject]


@dataclass(slots=True)
class Withdrawn:
    """A 304 made the stored response unstorable (RFC 9111 §4.3.4, then §3): it is gone
    from the index; its body with the updated headers is this client's alone, and the
    body file is the caller's to remove once delivered."""

    obj: StoredObject
    generation: int  # the invalidation to publish (bus/signal.py), 0 when none


@dataclass(slots=True)
class Passed:
    """Not storable: the origin's response, for this client alone."""

    response: aiohttp.ClientResponse | None  # None: a follower must fetch on its own


@dataclass(slots=True)
class Failed:
    status: int


@dataclass(slots=True)
class Cached:
    """Another fill stored the object while this request was on its way: a HIT."""

    entry: Entry


Outcome = Fetched | Revalidated | Withdrawn | Passed | Failed | Cached


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
    stale: Entry | None  # the stored response being replaced or revalidated, if any


class Filler:
    def __init__(
        self,
        index: CacheIndex,
        bodies: BodyStore,
        origin: Origin,
        applied_seq: Callable[[], int],
        recheck: Callable[[FillRequest], tuple[Entry | None, bool]],
        limits: Limits,
        stats: WorkerStats,
    ) -> None:
        self.index = index
        self.limits = limits
        self.stats = stats
        self._recheck = recheck
        self.bodies = bodies
        self.origin = origin
        self._applied_seq = applied_seq
        self._progress: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def obtain(self, fill: FillRequest) -> Outcome:
        """Lead the fill, or follow the one in progress (in this process or another)."""
        for _ in range(8):
            writer = FillWriter.claim(self.bodies, fill.key_hash)
            if writer is not None:
                # Checked again under the claim: a fill may have completed between this
                # request's lookup and its claim, and must not be fetched twice; and a
                # revalidation must send the validators of what is stored now.
                stored, servable = self._recheck(fill)
                if stored is not None and servable:
                    writer.end(REVALIDATED)
                    return Cached(stored)
                fill.stale = stored
                return await self._lead(writer, fill)
            reader = FillReader.open(self.bodies, fill.key_hash)
            if reader is None:
                continue  # it finished between the two calls: claim again
            outcome = await self._follow(reader, fill)
            if outcome is not None:
                return outcome
        return Passed(None)

    def _forwarded(self, fill: FillRequest) -> list[tuple[str, str]]:
        """The client's request headers as a fill sends them to the origin."""
        request = fill.request
        zone = fill.view.zone
        return forward_headers(
            request.headers, request.hmap, zone, fill.peer, for_fill=True, cdn_id=self.origin.cdn_id
        )

    # -- leader -----------------------------------------------------------------------

    async def _lead(self, writer: FillWriter, fill: FillRequest) -> Outcome:
        zone = fill.view.zone
        fill_seq = self._applied_seq()
        headers = self._forwarded(fill)
        stale = fill.stale
        conditional = stale is not None and zone.cache.revalidate and stale.obj.status == 200
        if conditional and stale is not None:
            if stale.etag:
                headers.append(("If-None-Match", stale.etag))
            if "last-modified" in stale.hmap:
                headers.append(("If-Modified-Since", stale.hmap["last-modified"]))
            conditional = stale.etag is not None or "last-modified" in stale.hmap
        request_time = time.time()
        try:
            response = await self.origin.request(zone, "GET", fill.target, headers)
        except OriginError as exc:
            writer.end(FAILED, exc.status)
            self._wake(fill.key_hash)
            return Failed(exc.status)
        response_time = time.time()
        if response.status >= 500 and stale is not None and zone.cache.usestale:
            # A failing origin with a stale copy at hand: serve that (like
            # proxy_cache_use_stale http_5xx, RFC 5861 stale-if-error).
            response.release()
            writer.end(FAILED, response.status)
            self._wake(fill.key_hash)
            return Failed(response.status)
        pairs = _pairs(response)
        rhmap = header_map(pairs)

        if response.status == 304 and conditional and stale is not None:
            response.release()
            updated = _updated_object(stale.obj, pairs, request_time, response_time, fill_seq)
            if not may_store(fill, updated.status, header_map(updated.headers)):
                # e.g. the 304 carried Set-Cookie or Cache-Control: private: no later
                # request may be served what this one made of the stored response.
                generation = self.index.withdraw(updated.id)
                writer.end(PASS)
                self._wake(fill.key_hash)
                return Withdrawn(updated, generation)
            self.index.refresh(updated, fill_seq)
            writer.end(REVALIDATED)
            self._wake(fill.key_hash)
            return Revalidated([updated])

        names = vary_names(rhmap)
        # A page fetched for a visitor with a Cookie and no lifetime of its own may be
        # theirs (edge/deception.py); a 304 to one only confirms what was stored before.
        if (
            names is None
            or not may_store(fill, response.status, rhmap)
            or personal(fill.request.hmap, rhmap)
        ):
            writer.end(PASS)
            self._wake(fill.key_hash)
            return Passed(response)

        length = response.content_length
        if not storable_length(length, self.limits):
            log.warning(
                "not caching %s: Content-Length %s over the size limit", fill.target, length
            )
            self.stats.not_stored(Verdict.TOO_BIG.value)
            writer.end(PASS)
            self._wake(fill.key_hash)
            return Passed(response)
        fill_id = secrets.token_hex(8)
        progress = Progress(length)
        head = {
            "status": response.status,
            "reason": response.reason or "",
            "headers": pairs,
            "request_time": request_time,
            "response_time": response_time,
            "length": length,
            "vary_names": list(names),
            "vary_values": list(vary_values(names, fill.request.hmap)),
        }
        try:
            if length is not None and not self._hold(fill_id, progress, length):
                self.stats.not_stored(Verdict.NO_ROOM.value)
                raise OSError("no room in the cache")
            writer.write_head(head, length)
        except (OSError, sqlite3.Error) as exc:  # the disk or the cache is full
            log.warning("not caching %s: %s", fill.target, exc)
            with contextlib.suppress(sqlite3.Error):
                self.index.release(fill_id)
            writer.end(PASS)
            self._wake(fill.key_hash)
            return Passed(response)
        reader = FillReader.open(self.bodies, fill.key_hash)
        assert reader is not None  # we hold the part file
        handoff = Handoff()
        task = asyncio.get_running_loop().create_task(
            self._pump(writer, response, fill, head, fill_seq, fill_id, progress, handoff)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._wake(fill.key_hash)
        if reader.read_head() is None:  # the claim makes this impossible: the file is ours
            raise RuntimeError(f"fill of {fill.target}: the part file is not the leader's")
        return Fetched(reader, head, handoff)

    def _hold(self, fill_id: str, progress: Progress, size: int) -> bool:
        """Hold `size` bytes of the cache for this fill, evicting others to make room."""
        if size <= progress.reserved:
            return True
        limit = self.limits.max_cache
        if not self.index.reserve(fill_id, os.getpid(), size, limit):
            more = size - progress.reserved
            self.stats.evicted += make_room(self.index, self.bodies, limit, more)
            if not self.index.reserve(fill_id, os.getpid(), size, limit):
                return False
        progress.reserved = size
        return True

    def _bound(
        self, writer: FillWriter, fill_id: str, progress: Progress, incoming: int
    ) -> Verdict:
        """May the fill write `incoming` more bytes (budget held)? (edge/bounds.py)"""
        now = time.monotonic()
        note_readers(progress, writer.has_readers(), now)
        decision = verdict(progress, incoming, self.limits, now)
        if decision is Verdict.KEEP:
            try:
                held = self._hold(fill_id, progress, reservation(progress, incoming, self.limits))
            except sqlite3.Error:  # the index's disk is full: no room, the client goes on
                held = False
            if not held:
                return Verdict.NO_ROOM
        return decision

    async def _pump(
        self,
        writer: FillWriter,
        response: aiohttp.ClientResponse,
        fill: FillRequest,
        head: dict[str, Any],
        fill_seq: int,
        fill_id: str,
        progress: Progress,
        handoff: Handoff,
    ) -> None:
        """Copy the origin body to the fill file; index it only if it arrived whole."""
        state = FAILED
        handed = False
        try:
            async for chunk in response.content.iter_chunked(CHUNK):
                decision = self._bound(writer, fill_id, progress, len(chunk))
                if decision is not Verdict.KEEP:
                    handed = decision is not Verdict.ABANDONED and handoff.give(chunk, response)
                    log.warning("not caching %s: %s", fill.target, decision.value)
                    self.stats.not_stored(decision.value)
                    return
                writer.write(chunk)
                progress.written = writer.written
                self._wake(fill.key_hash)
            length = head["length"]
            if length is not None and writer.written != length:
                raise aiohttp.ClientPayloadError("origin body shorter than Content-Length")
            obj = StoredObject(
                id=self.bodies.new_id(),
                key_hash=fill.key_hash,
                zone_id=fill.view.zone.id,
                path=fill.path,
                query=fill.query,
                status=head["status"],
                reason=head["reason"],
                headers=head["headers"],
                request_time=head["request_time"],
                response_time=head["response_time"],
                vary_names=tuple(head["vary_names"]),
                vary_values=tuple(head["vary_values"]),
                body_offset=writer.body_offset,
                size=writer.written,
                stored_seq=fill_seq,
                tags=_tags(header_map(head["headers"])),
            )
            final = self.bodies.object_path(obj.id)
            writer.complete(final)
            try:
                replaced = self.index.insert(obj, fill_seq, fill_id)
            except sqlite3.Error as exc:
                # The index's disk is full: the clients get the whole body, nothing is
                # stored, and no body file is left that no row names.
                log.warning("not caching %s: %s", fill.target, exc)
                final.unlink()
                with contextlib.suppress(sqlite3.Error):
                    self.index.release(fill_id)
            else:
                self.bodies.remove(r.id for r in replaced)
            state = COMPLETE
        except (TimeoutError, aiohttp.ClientError, OSError, sqlite3.Error) as exc:
            # A body the origin cut off is never cached (README, How the edge caches); followers
            # that already sent headers see their connection cut, as the origin's was. So
            # does a full disk under a body of unknown length (one of known length has
            # its space reserved before its head is sent).
            log.warning("fill of %s failed: %s", fill.target, exc)
        finally:
            if state != COMPLETE:
                with contextlib.suppress(sqlite3.Error):
                    self.index.release(fill_id)
            if not handed:
                response.release()
            writer.end(state, 502)
            self._wake(fill.key_hash)

    # -- followers --------------------------------------------------------------------

    async def resume(
        self, fill: FillRequest, head: dict[str, Any], position: int
    ) -> aiohttp.ClientResponse | None:
        """The rest of a fill whose leader died mid-body, for one of its readers, straight
        from the origin: the bytes from `position` of the same representation (RFC 9110
        §14.2 Range, §13.1.5 If-Range on its entity tag or Last-Modified), or None when the
        origin cannot promise them (no validator, another representation, a failure)."""
        hmap = header_map(head["headers"])
        etag = hmap.get("etag")
        validator = etag if etag and not etag.startswith("W/") else hmap.get("last-modified")
        if validator is None:
            return None
        zone = fill.view.zone
        headers = self._forwarded(fill)
        headers += [("Range", f"bytes={position}-"), ("If-Range", validator)]
        try:
            response = await self.origin.request(zone, "GET", fill.target, headers)
        except OriginError:
            return None
        if response.status == 206 and response.headers.get("content-range", "").startswith(
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
                    names = tuple(head["vary_names"])
                    if names and list(vary_values(names, fill.request.hmap)) != head["vary_values"]:
                        return Passed(None)  # another variant: fetch on our own
                    keep = True
                    return Fetched(reader, head, fill=fill)
                state, error = reader.state()
                if state == FAILED:
                    return Failed(error or 502)
                if state == PASS:
                    return Passed(None)
                if state in (REVALIDATED, COMPLETE):
                    return None
                await self.wait(fill.key_hash)
        finally:
            if not keep:
                reader.close()

    async def wait(self, key_hash: str) -> None:
        """Until the fill of `key_hash` progresses (in this process) or a poll interval."""
        event = self._progress.get(key_hash)
        if event is None:
            event = self._progress[key_hash] = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), POLL_INTERVAL)

    def _wake(self, key_hash: str) -> None:
        event = self._progress.pop(key_hash, None)
        if event is not None:
            event.set()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def may_store(fill: FillRequest, status: int, resp: HeaderMap) -> bool:
    """Whether a response to `fill` may be stored: decided for a response fetched whole,
    and again for a stored one once a 304 updated its headers (RFC 9111 §4.3.4), since
    those headers are then what it is stored with (§3)."""
    policy = fill.view.zone.cache
    return storable(
        "GET",
        status,
        fill.request.hmap,
        resp,
        honour_origin=policy.cachecontrol,
        default_ttl=policy.cache_secs,
    ) and not disguised(fill.path, resp)  # `/account.php/x.css` answered with a page


def _pairs(response: aiohttp.ClientResponse) -> list[tuple[str, str]]:
    return [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers
    ]


def _tags(hmap: dict[str, str]) -> list[str]:
    """Surrogate-Key is space-separated (Fastly), Cache-Tag comma-separated (Cloudflare)."""
    tags = set((hmap.get("surrogate-key") or "").split())
    tags.update(split_list(hmap.get("cache-tag")))
    return sorted(t for t in tags if t)


def _updated_object(
    old: StoredObject,
    fresh_headers: list[tuple[str, str]],
    request_time: float,
    response_time: float,
    fill_seq: int,
) -> StoredObject:
    """RFC 9111 §3.2 and §4.3.4: the 304's headers replace the stored ones they name."""
    replaced = {n.lower() for n, _ in fresh_headers if n.lower() not in _KEEP_ON_UPDATE}
    headers = [(n, v) for n, v in old.headers if n.lower() not in replaced]
    headers += [(n, v) for n, v in fresh_headers if n.lower() in replaced]
    return StoredObject(
        id=old.id,
        key_hash=old.key_hash,
        zone_id=old.zone_id,
        path=old.path,
        query=old.query,
        status=old.status,
        reason=old.reason,
        headers=headers,
        request_time=request_time,
        response_time=response_time,
        vary_names=old.vary_names,
        vary_values=old.vary_values,
        body_offset=old.body_offset,
        size=old.size,
        stored_seq=fill_seq,
        tags=old.tags,
    )
