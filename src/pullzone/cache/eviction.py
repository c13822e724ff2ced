"""LRU eviction, shared by the janitor (in the background, ahead of the fills) and by
fills (at once, for the room their next bytes need, when the janitor fell behind).

The janitor keeps the cache between LOW_WATER and HIGH_WATER of its limit, in short
batches, so a fill seldom finds the cache full. A fill that does evicts what it needs
and FILL_SLACK more: all a fill's followers and the other misses of its worker wait for
its eviction (the writes thread, cache/batch.py), where evicting down to the low-water
mark at once took hundreds of milliseconds under S15 (bench/README.md, stop 34)."""

from __future__ import annotations

from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex

EVICT_BATCH = 500  # objects per statement and per transaction at most
LOW_WATER = 0.95  # the janitor evicts down to this fraction of the limit…
HIGH_WATER = 0.97  # …once the cache is over this one
FILL_SLACK = 0.002  # a fill evicts this fraction of the limit more than it needs


def make_room(index: CacheIndex, bodies: BodyStore, limit: int, more: int) -> int:
    """For a fill: evict so that `more` bytes fit under `limit`, and a little more."""
    return evict_to(index, bodies, limit - int(limit * FILL_SLACK) - more)


def evict_to(index: CacheIndex, bodies: BodyStore, target: int, most: int | None = None) -> int:
    """Delete least-recently-used objects until stored and reserved bytes (`index.used`)
    are at most `target`, nothing is left to evict, or `most` are gone; returns how many
    went."""
    evicted = 0
    used = index.used()
    while used > target and (most is None or evicted < most):
        victims = []
        batch = EVICT_BATCH if most is None else min(EVICT_BATCH, most - evicted)
        for object_id, size in index.least_recently_used(batch):
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
