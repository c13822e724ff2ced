"""A stored response as an edge worker serves it: freshness precomputed, head prebuilt.

Building an Entry does the per-object work once (header parsing, freshness lifetime,
the response head bytes); a HIT then costs a dict lookup, two float operations and one
write.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict

from pullzone.cache.stored import StoredObject
from pullzone.edge.labels import XCache
from pullzone.edge.switches import NO_EDITS, ResponseEdits
from pullzone.edge.writer import (
    NOT_MODIFIED_FIELDS,
    body_framing,
    client_headers,
    encode_headers,
    status_line,
)
from pullzone.spec.conditional import evaluate_preconditions
from pullzone.spec.dates import parse_http_date
from pullzone.spec.freshness import CLOCK_SKEW, FRESH, freshness, reuse, stale_windows
from pullzone.spec.headers import HeaderMap, header_map
from pullzone.zones.model import CachePolicy

MEMORY_BODY_LIMIT = 256 * 1024
# The zone's `prefresh`: the share of an object's lifetime, at its end, in which a request
# refreshes it in the background.
PREFRESH_FRACTION = 0.1


class Entry:
    __slots__ = (
        "body",
        "checked_seq",
        "edits",
        "encodings",
        "error_until",
        "etag",
        "expires",
        "fresh_from",
        "fresh_until",
        "freshness",
        "full_head",
        "hmap",
        "honour_origin",
        "initial_age",
        "last_modified",
        "obj",
        "path",
        "policy",
        "response_time",
        "size",
        "stale",
        "stale_until",
        "status",
        "touched",
        "vary_names",
    )

    def __init__(
        self,
        obj: StoredObject,
        policy: CachePolicy,
        path: str,
        checked_seq: int,
        stale: bool,
        edits: ResponseEdits = NO_EDITS,
        prefresh: bool = False,
    ) -> None:
        self.obj = obj
        self.edits = edits  # the zone's own fields (edge/switches.py), in the prebuilt head
        head = obj.head
        self.path = path
        self.checked_seq = checked_seq
        self.stale = stale  # purged softly or invalidated: revalidate before any use
        self.hmap = hmap = header_map(head.headers)
        self.honour_origin = policy.cachecontrol
        self.freshness = window = freshness(
            head.status,
            hmap,
            request_time=head.request_time,
            response_time=head.response_time,
            honour_origin=policy.cachecontrol,
            default_ttl=policy.cache_secs,
        )
        # Read on every HIT: kept here, one attribute away. With the zone's `prefresh`,
        # the last tenth of the lifetime is not taken as fresh here: a request then is
        # answered as a HIT while the object is refreshed in the background
        # (`while_refreshing`), so a hot object never makes a visitor wait.
        self.expires = 0.0 if stale else window.fresh_until
        self.fresh_from = 0.0 if stale else window.fresh_from
        self.fresh_until = self.expires
        if prefresh and not stale:
            self.fresh_until -= window.lifetime * PREFRESH_FRACTION
        # RFC 5861: served stale while revalidating until `stale_until`; in place of a
        # failing origin until `error_until` (a soft purge keeps that one: CONTRACT).
        windows = stale_windows(hmap, honour_origin=policy.cachecontrol, usestale=policy.usestale)
        self.stale_until = self.expires + windows.while_revalidate if self.expires else 0.0
        # (0: never, not even while fresh, for a request that asked to revalidate).
        self.error_until = window.fresh_until + windows.if_error if windows.if_error else 0.0
        self.status = head.status
        self.size = obj.size
        self.initial_age = window.initial_age
        self.response_time = head.response_time
        self.vary_names = head.vary_names
        self.etag = hmap.get("etag")
        self.last_modified = parse_http_date(hmap.get("last-modified"))
        self.policy = policy
        self.full_head = (
            status_line(head.status, head.reason)
            + encode_headers(self.client_fields())
            + body_framing("GET", head.status, obj.size, "1.1").field
        )
        self.body: bytes | None = None
        self.touched = 0.0  # when this worker last recorded an access (see LRU_INTERVAL)
        # Compressed variants of this identity, by content coding (edge/compress.py):
        # None until a zone with compression looks; {} when it may not be compressed.
        self.encodings: dict[str, Entry] | None = None

    def client_fields(self) -> list[tuple[str, str]]:
        """The stored header fields as clients see them (built again when asked: only
        the prebuilt head is kept, an entry's memory being most of a worker's)."""
        return client_headers(self.obj.head.headers, self.hmap, self.policy, self.edits)

    def age(self, now: float) -> float:
        """RFC 9111 §4.2.3: corrected initial age plus resident time (infinite when the
        clock went back since it was stored: `spec.freshness.current_age`)."""
        resident = now - self.response_time
        if resident < -CLOCK_SKEW:
            return math.inf
        return self.initial_age + resident

    def is_fresh(self, request: HeaderMap, now: float) -> bool:
        if "cache-control" not in request and "pragma" not in request:
            return self.fresh_from <= now < self.fresh_until
        if self.stale:
            return False
        return (
            reuse(
                self.hmap,
                request,
                lifetime=self.freshness.lifetime,
                age=self.age(now),
                honour_origin=self.honour_origin,
            )
            == FRESH
        )

    def while_refreshing(self, request: HeaderMap, now: float) -> XCache | None:
        """How the stored response may be answered at once while it is refreshed in the
        background, when it is not fresh: HIT in its last tenth with the zone's
        `prefresh`, STALE in its stale-while-revalidate window (RFC 5861 §3); None: the
        client waits for the origin. A request with its own Cache-Control or Pragma
        (no-cache, max-age=0 on a reload) always waits: it asked for a validated answer
        (RFC 9111 §5.2.1), and none of its directives allows a stale one here."""
        if "cache-control" in request or "pragma" in request or now < self.fresh_from:
            return None
        if now < self.expires:
            return XCache.HIT
        if now < self.stale_until:
            return XCache.STALE
        return None

    def may_stand_in(self, now: float) -> bool:
        """Whether the stored response may answer for an origin that failed (RFC 9111
        §4.2.4, RFC 5861 §4 stale-if-error, the zone's usestale)."""
        return now < self.error_until

    def precondition(self, request: HeaderMap) -> int | None:
        """304 or 412 when the client's conditions say so (RFC 9110 §13.2.2)."""
        return evaluate_preconditions(request, etag=self.etag, last_modified=self.last_modified)

    def not_modified_head(self) -> bytes:
        fields = [(n, v) for n, v in self.client_fields() if n.lower() in NOT_MODIFIED_FIELDS]
        fields += self.edits.added  # the zone's fields are on every response, a 304's too
        return status_line(304) + encode_headers(fields)

    def load_body(self) -> bool:
        """Read a small body into memory; False when the file is missing or damaged."""
        obj = self.obj
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            if os.fstat(fd).st_size != obj.body_offset + obj.size:
                return False
            if obj.size <= MEMORY_BODY_LIMIT:
                body = os.pread(fd, obj.size, obj.body_offset)
                if len(body) != obj.size:
                    return False
                self.body = body
        finally:
            os.close(fd)
        return True

    def on_disk(self) -> bool:
        """Whether the body file is still there (eviction removes it, in any worker)."""
        return self.size == 0 or os.path.exists(self.path)

    def read_body(self) -> bytes | None:
        """The body of a small object from disk (the page cache, usually); None if gone."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            data = os.pread(fd, self.obj.size, self.obj.body_offset)
        finally:
            os.close(fd)
        return data if len(data) == self.obj.size else None


class MemoryCache:
    """Each worker's LRU of entries by cache key (all variants of a key together), bounded
    in keys and in the bytes of the small bodies it holds.

    When the body budget is spent, new entries are kept without their bodies, which are
    then read from disk per request: a working set larger than the budget costs a pread
    each time instead of thrashing the whole LRU.
    """

    def __init__(self, max_keys: int = 30_000, max_bytes: int = 64 * 1024**2) -> None:
        self._items: OrderedDict[str, tuple[list[Entry], int]] = OrderedDict()
        self._max_keys = max_keys
        self._max_bytes = max_bytes
        self._bytes = 0

    def get(self, key: str) -> list[Entry] | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: str, entries: list[Entry]) -> None:
        self.drop(key)
        size = sum(len(e.body) for e in entries if e.body is not None)
        if self._bytes + size > self._max_bytes:
            for entry in entries:
                entry.body = None
            size = 0
        self._items[key] = (entries, size)
        self._bytes += size
        while len(self._items) > self._max_keys:
            _, (_, dropped) = self._items.popitem(last=False)
            self._bytes -= dropped

    def drop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= item[1]

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
