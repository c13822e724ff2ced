"""Compression at the edge (the zone's `edge.compression`): serving a HIT in the content
coding the client prefers (edge/encoding.py decides which), from a compressed variant
stored once per coding for the whole node.

The identity object is filled and stored as any other. The first HIT that wants br (or
gzip) of it makes the variant from the stored identity body: one compression per coding
per object for the node, collapsed under the same fill claim as fills use (a part file
named by the variant's key) and decided again under it, in a thread so the worker's
event loop goes on serving. While another worker compresses, a request is answered with
the identity (it is acceptable to every client). The variant is stored as an object of
its own (same zone, path, query, tags and stored sequence as its identity), so every
purge that matches the identity matches it too, and eviction weighs it as any object.

A variant is served only for the identity it was made from (its id is derived from the
identity's, encoding.variant_id): freshness, revalidation and purges are the identity's,
and its head is built from the identity's current head each time it is loaded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import time
import zlib
from collections.abc import Awaitable, Callable

import brotli

from pullzone.cache.bodies import COMPLETE, FAILED, FillWriter, unique_hex
from pullzone.cache.index import Fill
from pullzone.cache.key import key_hash
from pullzone.cache.stored import StoredObject
from pullzone.edge.budget import Budget
from pullzone.edge.deliver import Deliverer
from pullzone.edge.encoding import (
    IDENTITY,
    choose_coding,
    compress,
    has_vary,
    may_compress,
    variant_head,
    variant_id,
    variant_key,
    with_vary,
)
from pullzone.edge.entry import Entry
from pullzone.edge.http import Exchange, Request
from pullzone.edge.labels import XCache
from pullzone.edge.lookup import Lookup
from pullzone.edge.state import ZoneView
from pullzone.edge.stats import WorkerStats
from pullzone.spec.headers import HeaderMap

log = logging.getLogger(__name__)


class Compressor:
    def __init__(
        self,
        lookup: Lookup,
        deliver: Deliverer,
        budget: Budget,
        stats: WorkerStats,
        touch: Callable[[str, float], None],
        lru_interval: float,
    ) -> None:
        self.index = lookup.index
        self.bodies = lookup.bodies
        self.state = lookup.state
        self.deliver = deliver
        self.budget = budget
        self.stats = stats
        self.touch = touch  # records an access for LRU eviction
        self.lru_interval = lru_interval
        # Compressions this worker runs, by variant id: its other requests wait for them.
        self._pending: dict[str, asyncio.Task[Entry | None]] = {}

    def hit(
        self,
        conn: Exchange,
        request: Request,
        view: ZoneView,
        key: str,
        stored: Entry,
        xcache: XCache,
        now: float,
    ) -> Awaitable[None] | None:
        """Deliver the fresh `stored` identity (a HIT of a zone with compression on) in
        the coding the request gets."""
        chosen = self.select(view, key, stored, request.hmap)
        if not isinstance(chosen, Entry):
            return self._deliver_made(conn, request, chosen, xcache)
        if chosen.obj.id != stored.obj.id and now - chosen.touched >= self.lru_interval:
            chosen.touched = now
            self.touch(chosen.obj.id, now)
        return self.deliver.entry(conn, request, chosen, xcache, now)

    async def _deliver_made(
        self, conn: Exchange, request: Request, made: Awaitable[Entry], xcache: XCache
    ) -> None:
        entry = await made
        await self.deliver.entry_async(conn, request, entry, xcache, time.time())

    def select(
        self, view: ZoneView, key: str, stored: Entry, request: HeaderMap
    ) -> Entry | Awaitable[Entry]:
        """The entry to serve for `stored`: itself when it may not be compressed, else
        its variant in the request's coding (an awaitable when it must be made first)."""
        encodings = stored.encodings
        if encodings is None:
            encodings = stored.encodings = self._examine(view, stored)
        if not encodings:
            return stored
        coding = choose_coding(request.get("accept-encoding"))
        found = encodings.get(coding)
        if found is not None:
            return found
        found = self._load(view, stored, coding)
        if found is not None:
            encodings[coding] = found
            return found
        return self._made(view, key, stored, coding)

    def _examine(self, view: ZoneView, stored: Entry) -> dict[str, Entry]:
        """{} for an object that is never compressed; else its identity as served in a
        zone with compression: with Vary: Accept-Encoding (RFC 9110 §12.5.5), which a
        fill adds when it stores the object, or this worker when it was stored before
        compression was switched on."""
        if not may_compress(stored.status, stored.hmap, stored.size):
            return {}
        head = stored.obj.head
        if has_vary(head.headers):
            return {IDENTITY: stored}
        obj = dataclasses.replace(
            stored.obj, head=dataclasses.replace(head, headers=with_vary(head.headers))
        )
        identity = Entry(obj, view.zone.cache, stored.path, stored.checked_seq, stored.stale)
        identity.body = stored.body
        return {IDENTITY: identity}

    def _load(self, view: ZoneView, stored: Entry, coding: str) -> Entry | None:
        """The variant of `stored` in `coding` the index holds, if any (and whole)."""
        obj = self.index.get(variant_id(stored.obj.id, coding))
        return None if obj is None else self._entry(view, stored, coding, obj)

    def _entry(self, view: ZoneView, stored: Entry, coding: str, obj: StoredObject) -> Entry | None:
        """The variant stored as `obj`, with the head of its identity as it is now."""
        identity = stored.obj
        variant = dataclasses.replace(
            identity,
            id=obj.id,
            key_hash=obj.key_hash,
            head=variant_head(identity.head, coding, obj.size),
            body_offset=obj.body_offset,
            size=obj.size,
        )
        path = str(self.bodies.object_path(obj.id))
        entry = Entry(variant, view.zone.cache, path, stored.checked_seq, stored.stale)
        if not entry.load_body():
            return None  # evicted or purged meanwhile: made again
        if stored.body is None:  # the worker's memory budget is spent: read per request
            entry.body = None
        return entry

    def _made(self, view: ZoneView, key: str, stored: Entry, coding: str) -> Awaitable[Entry]:
        vid = variant_id(stored.obj.id, coding)
        task = self._pending.get(vid)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._make(view, key, stored, coding))
            self._pending[vid] = task
            task.add_done_callback(lambda _t: self._pending.pop(vid, None))
        return self._settled(stored, coding, task)

    async def _settled(self, stored: Entry, coding: str, task: asyncio.Task[Entry | None]) -> Entry:
        made = await asyncio.shield(task)  # a client that leaves does not stop it
        encodings = stored.encodings or {}
        if made is None:  # being made by another worker: the identity meanwhile
            return encodings.get(IDENTITY, stored)
        encodings[coding] = made
        return made

    async def _make(self, view: ZoneView, key: str, stored: Entry, coding: str) -> Entry | None:
        """Compress `stored`'s body into `coding` and store it, once for the node: None
        when another process is doing it; the identity when it cannot be made or stored
        (kept for this coding by `_settled`: not tried again until the entry is
        reloaded)."""
        identity = (stored.encodings or {}).get(IDENTITY, stored)
        vkey = key_hash(variant_key(key, coding))
        try:
            writer = FillWriter.claim(self.bodies, vkey)
        except OSError as exc:
            log.warning("not compressing %s: %s", stored.obj.path, exc)
            return identity
        if writer is None:
            return None
        fill_seq = self.state.applied
        fill_id = unique_hex(8)
        held = False
        state = FAILED
        try:
            found = self._load(view, stored, coding)  # decided again under the claim
            if found is not None:
                state = COMPLETE
                return found
            level = view.zone.edge.compressionlevel
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(None, _compressed, stored, coding, level)
            if data is None:
                return identity  # its body is gone (purged, evicted): served as it is
            held = await self.budget.reserve(fill_id, len(data), len(data))
            if not held:
                return identity
            head = variant_head(stored.obj.head, coding, len(data))
            writer.write_head(head)
            writer.write(data)
            obj = StoredObject(
                id=variant_id(stored.obj.id, coding),
                key_hash=vkey,
                zone_id=stored.obj.zone_id,
                path=stored.obj.path,
                query=stored.obj.query,
                head=head,
                body_offset=writer.body_offset,
                size=len(data),
                stored_seq=stored.obj.stored_seq,
            )
            final = self.bodies.object_path(obj.id)
            final.unlink(missing_ok=True)  # left by a crash between its link and its row
            writer.complete(final)
            try:
                replaced = await self.budget.writes.insert(Fill(obj, fill_seq, fill_id))
            except sqlite3.Error:
                final.unlink(missing_ok=True)
                raise
            held = False
            # The variant of an identity this key no longer holds.
            self.bodies.remove(r.id for r in replaced if r.id != obj.id)
            self.stats.compressed(coding)
            state = COMPLETE
            return self._entry(view, stored, coding, obj) or identity
        except (OSError, sqlite3.Error, zlib.error, brotli.error) as exc:
            log.warning("not compressing %s: %s", stored.obj.path, exc)
            return identity
        finally:
            if held:
                self.budget.release(fill_id)
            writer.end(state)


def _compressed(stored: Entry, coding: str, level: int) -> bytes | None:
    """In a thread: the stored body compressed (None when its file is gone)."""
    body = stored.body if stored.body is not None else stored.read_body()
    return None if body is None else compress(body, coding, level)
