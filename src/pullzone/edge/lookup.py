"""Finding the stored response for a request: this worker's memory first, the node's
index when memory may be out of date (RFC 9111 §4: the one that matches, §4.1 Vary)."""

from __future__ import annotations

from collections.abc import Sequence

from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex, StoredObject
from pullzone.cache.key import key_hash
from pullzone.edge.decisions import select_variant
from pullzone.edge.entry import Entry, MemoryCache
from pullzone.edge.state import EdgeState, ZoneView
from pullzone.spec.headers import HeaderMap


class Lookup:
    def __init__(self, state: EdgeState, index: CacheIndex, bodies: BodyStore) -> None:
        self.state = state
        self.index = index
        self.bodies = bodies
        self.memory = MemoryCache()

    def find(self, view: ZoneView, key: str, request: HeaderMap) -> Entry | None:
        """The stored variant of `key` that matches the request, if any."""
        entries = self.memory.get(key)
        if entries:
            if len(entries) == 1:  # the usual case: one variant, often without Vary
                entry = entries[0]
                if (
                    entry.checked_seq >= view.changed_seq
                    and (not entry.vary_names or select_variant(entries, request))
                    and (entry.body is not None or entry.on_disk())
                ):
                    return entry
            elif all(e.checked_seq >= view.changed_seq for e in entries):
                variant = select_variant(entries, request)
                if variant is not None and (variant.body is not None or variant.on_disk()):
                    return variant
        # Not in memory, checked before the zone's last purge, another variant that
        # another worker may have stored, or one whose body file eviction removed since
        # (an entry kept without its body reads it per request): the index decides.
        return self.reload(view, key, request)

    def reload(
        self,
        view: ZoneView,
        key: str,
        request: HeaderMap,
        rows: Sequence[StoredObject] | None = None,
    ) -> Entry | None:
        """As `find`, from the index: what it holds now (`rows`, the key's rows, when
        the caller has just read them)."""
        return select_variant(self._load(view, key, rows), request)

    def invalidated(self, generation: int) -> None:
        """Stored objects changed in the index (`generation` > 0): every worker of the
        node, this one first, forgets what it holds in memory before its next request.

        The change is in the shared index already; what the other workers lack is the
        news. They get it through the node's shared signal (bus/signal.py), which they
        read before each request: no message to the supervisor, no event in the log
        (whose sequence numbers belong to the bus). Rare (an unsafe method on a cached
        path, a 304 that makes its object unstorable), so a whole memory cache is
        dropped rather than tracking which keys changed: each key is read from the index
        again when next asked for. Published before the clear, so a change another
        worker published meanwhile is read too.
        """
        if generation:
            self.state.publish_invalidation(generation)
            self.memory.clear()

    def fetched(self, view: ZoneView, obj: StoredObject, body: bytes) -> Entry:
        """The entry of a response just fetched whole, with its body, for the client that
        asked. Not kept in memory: a worker keeps what is asked for again (`_load`), not
        every object asked for once, which would push out those asked for often."""
        entry = self._entry(view, obj, 0)
        entry.body = body
        return entry

    def _load(
        self, view: ZoneView, key: str, rows: Sequence[StoredObject] | None = None
    ) -> list[Entry]:
        """Entries for `key` from the index, with this zone's purges applied."""
        entries = []
        damaged = []
        for obj in self.index.variants(key_hash(key)) if rows is None else rows:
            if obj.stored_seq < view.hard_all_seq:
                continue
            entry = self._entry(view, obj, self.state.applied)
            if entry.load_body():
                entries.append(entry)
            else:
                damaged.append(obj.id)
        if damaged:
            self.index.delete(damaged)
            self.bodies.remove(damaged)
        if entries:
            self.memory.put(key, entries)
        else:  # nothing stored: not kept, which would push out keys that are
            self.memory.drop(key)
        return entries

    def _entry(self, view: ZoneView, obj: StoredObject, checked_seq: int) -> Entry:
        return Entry(
            obj,
            view.zone.cache,
            self.bodies.object_file(obj.id),
            checked_seq,
            obj.stale or obj.stored_seq < view.soft_all_seq,
            view.edits,
            view.zone.edge.prefresh,
        )
