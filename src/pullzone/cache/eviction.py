"""LRU eviction, shared by the janitor (in the background, to its low-water mark) and by
fills (at once, for the room their next bytes need)."""

from __future__ import annotations

from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex

EVICT_BATCH = 500
LOW_WATER = 0.95  # evict down to this fraction of the limit, so eviction runs in batches


def make_room(index: CacheIndex, bodies: BodyStore, limit: int, more: int = 0) -> int:
    """Evict so that `more` bytes fit under `limit`, down to the low-water mark."""
    return evict_to(index, bodies, int(limit * LOW_WATER) - more)


def evict_to(index: CacheIndex, bodies: BodyStore, target: int) -> int:
    """Delete least-recently-used objects until stored and reserved bytes (`index.used`)
    are at most `target`, or nothing is left to evict; returns how many went."""
    evicted = 0
    used = index.used()
    while used > target:
        victims = []
        for object_id, size in index.least_recently_used(EVICT_BATCH):
            victims.append(object_id)
            used -= size
            if used <= target:
                break
        if not victims:
            break
        index.delete(victims)
        bodies.remove(victims)
        evicted += len(victims)
    return evicted
