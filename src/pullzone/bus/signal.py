"""The newest applied event sequence, shared by all processes of one node through mmap.

The applier writes it after the cache index reflects an event; every edge worker reads it
on each request (a few hundred nanoseconds) and catches up before serving when behind.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

_FORMAT = struct.Struct("<Q")


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

    @property
    def value(self) -> int:
        return int(_FORMAT.unpack_from(self._map, 0)[0])

    def publish(self, seq: int) -> None:
        # An aligned 8-byte store is atomic on the platforms we run on; readers never
        # see a torn value.
        _FORMAT.pack_into(self._map, 0, seq)

    def close(self) -> None:
        self._map.close()
