"""How far a fill may go: the largest object stored, the cache's budget, and when a fill
nobody reads any more is abandoned. Pure decisions over typed records; fills.py acts.

A body of unknown length (chunked, or delimited by the origin closing, RFC 9112 §6.3) can
be endless: nothing but these rules stops it from filling the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Cache budget a fill of unknown length reserves at a time (index.reserve): one SQLite
# transaction per step, never more bytes on disk than reserved. At most a sixteenth of the
# cache, so that a small cache evicts little more than the fill's bytes need.
RESERVE_STEP = 4 * 1024 * 1024
RESERVE_FRACTION = 16
# Once every client of a fill has gone, it may take this many more bytes and this much
# more time to finish. nginx's proxy_cache and Varnish finish a cacheable fetch whose
# client left, so that the next request is a HIT; unbounded, that is how an endless body
# fills a disk. A known length whose rest is larger is abandoned at once.
ORPHAN_BYTES = 8 * 1024 * 1024
ORPHAN_SECONDS = 10.0


class Verdict(Enum):
    KEEP = "keep"  # go on storing
    TOO_BIG = "too_big"  # past --max-object-size (or the whole cache): not stored
    NO_ROOM = "no_room"  # the cache cannot make room (every byte held by other fills)
    ABANDONED = "abandoned"  # nobody reads it and finishing is not worth it


@dataclass(frozen=True, slots=True)
class Limits:
    max_object: int  # --max-object-size
    max_cache: int  # --max-cache-size

    @property
    def object_cap(self) -> int:
        """No object is larger than the whole cache may be."""
        return min(self.max_object, self.max_cache)


@dataclass(slots=True)
class Progress:
    """One fill's body so far."""

    length: int | None  # Content-Length; None: unknown until the body ends
    written: int = 0
    reserved: int = 0  # cache budget held (edge/budget.py), the pool's included
    pooled: int = 0  # of which taken from the worker's pool, not in a row of its own
    orphaned_at: float | None = None  # when the last reader left (monotonic seconds)
    written_when_orphaned: int = 0


def storable_length(length: int | None, limits: Limits) -> bool:
    """A response whose Content-Length is over the cap is relayed, never stored."""
    return length is None or length <= limits.object_cap


def reservation(progress: Progress, incoming: int, limits: Limits) -> int:
    """The budget to hold before writing `incoming` more bytes (`progress.reserved` when
    it is enough); over the cap when they would make the object too big."""
    needed = progress.written + incoming
    if needed <= progress.reserved:
        return progress.reserved
    if progress.length is not None:
        return max(needed, progress.length)
    step = min(RESERVE_STEP, limits.max_cache // RESERVE_FRACTION)
    return max(needed, min(progress.reserved + step, limits.object_cap))


def verdict(progress: Progress, incoming: int, limits: Limits, now: float) -> Verdict:
    """Whether a fill may write `incoming` more bytes (the budget aside: index.reserve)."""
    if progress.written + incoming > limits.object_cap:
        return Verdict.TOO_BIG
    if progress.orphaned_at is None:
        return Verdict.KEEP
    total = progress.length if progress.length is not None else progress.written + incoming
    if (
        total - progress.written_when_orphaned > ORPHAN_BYTES
        or now - progress.orphaned_at > ORPHAN_SECONDS
    ):
        return Verdict.ABANDONED
    return Verdict.KEEP


def note_readers(progress: Progress, readers: bool, now: float) -> None:
    """Track when the fill lost its last reader (a new follower adopts it again)."""
    if readers:
        progress.orphaned_at = None
    elif progress.orphaned_at is None:
        progress.orphaned_at = now
        progress.written_when_orphaned = progress.written
