"""Eviction, shared by the janitor (in the background, ahead of the fills) and by fills
(at once, for the room their next bytes need, when the janitor fell behind).

The order is GDSF's (greedy-dual-size-frequency, as Squid's `heap GDSF`), with the square
root of the size: an object's priority is the floor, the priority of the last object
evicted when it was last accessed, plus its recorded accesses times 1 / sqrt(its KiB)
(cache/index.py). The lowest goes first. An object asked for again climbs above the
floor, which rises as objects are evicted, so what is not asked for again sinks below
what is; among objects asked for as often, a large one goes before several small ones
that use its space. Under S15's Zipf traffic this keeps the request hit ratio at 89.6 %
where LRU kept 85.3 %, with as many bytes hit (86.8 % against 86.1 %), and with objects
up to 100 MiB as well (bench/eviction_sim.py, bench/README.md). Accesses are recorded at
most once per LRU_INTERVAL per object and worker (edge/lifecycle.py).

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
    """Evict objects in priority order until stored and reserved bytes (`index.used`) are
    at most `target`, nothing is left to evict, or `most` are gone; returns how many
    went."""
    evicted = 0
    used = index.used()
    while used > target and (most is None or evicted < most):
        victims = []
        floor = 0.0
        batch = EVICT_BATCH if most is None else min(EVICT_BATCH, most - evicted)
        for object_id, size, priority in index.eviction_order(batch):
            victims.append(object_id)
            floor = priority
            used -= size
            if used <= target:
                break
        if not victims:
            break
        index.evict(victims, floor)
        bodies.remove(victims)
        evicted += len(victims)
    return evicted
