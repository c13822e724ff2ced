"""What every process of one node must know at once, shared through mmap: the newest
applied event sequence, whether cached objects may be served without revalidation, the
cache index's invalidation generation, and how many times the node replaced its replica
with a snapshot while running.

The applier writes the sequence after the cache index reflects an event; every edge
worker reads all three on each request (a few hundred nanoseconds) and catches up before
serving when behind. A cluster node sets `revalidate_all` while it may have missed
events (starting, reconnecting, cut off from the bus too long).

The invalidation generation is how one edge worker tells the others that it changed
stored objects behind their backs (RFC 9111 §4.4 invalidation by an unsafe method, an
object a 304 made unstorable): it changes the index, then publishes the generation that
change took from the index (`CacheIndex.mark_stale`, `withdraw`), before answering. A
worker that reads a generation other than the one it last saw drops what it holds in
memory and reads the index again. Generations are unique (counted in the index, in the
change's own transaction) and each is published once, so a plain store suffices: however
two publications interleave, a worker reads a value it has not seen after every change
published before it, and re-checks.

A snapshot restored in place (server/cluster.py) changes what no event in the node's log
says (the zones, certificates and purges of the events it never got): the node counts
the restore, after the replica and the cache index hold it and before it publishes the
snapshot's sequence, and a worker that reads another count loads everything again.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable
from functools import partial
from pathlib import Path

_FORMAT = struct.Struct("<QQQQ")


class SeqSignal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < mmap.PAGESIZE:
                os.ftruncate(fd, mmap.PAGESIZE)
            self._map = mmap.mmap(fd, mmap.PAGESIZE)
        finally:
            os.close(fd)
        # (the applied sequence, 1 when every object must be revalidated, else 0, the
        # invalidation generation, the restores). Read on every request: bound here, it
        # is one C call without a Python frame.
        self.read: Callable[[], tuple[int, int, int, int]] = partial(
            _FORMAT.unpack_from, self._map, 0
        )

    @property
    def value(self) -> int:
        return self.read()[0]

    def publish(self, seq: int) -> None:
        # Aligned 8-byte stores are atomic on the platforms we run on; readers never
        # see a torn value.
        struct.pack_into("<Q", self._map, 0, seq)

    def set_revalidate_all(self, on: bool) -> None:
        struct.pack_into("<Q", self._map, 8, int(on))

    def publish_invalidation(self, generation: int) -> None:
        struct.pack_into("<Q", self._map, 16, generation)

    def count_restore(self) -> None:
        """Tell the workers the replica was replaced: they load it all again."""
        restores = struct.unpack_from("<Q", self._map, 24)[0]
        struct.pack_into("<Q", self._map, 24, restores + 1)

    def close(self) -> None:
        self._map.close()
