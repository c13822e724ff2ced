"""A streaming fill's body writes, off the event loop.

A write into the page cache blocks its thread for as long as the kernel throttles a
process that dirties pages faster than they are written back (`balance_dirty_pages`:
pauses of up to 200 ms each). On the event loop that pause is every HIT's too: under
S16's 1 MiB misses the loop spent 27% of its time in these writes (bench/README.md,
stop 32). So each chunk of a body that streams in (more than fills.WHOLE) is written by
one of THREADS threads, and the fill waits for it (which orders its chunks); a body of
at most WHOLE is written once, on the loop, where a thread's hand-off would cost more
than the write.

A write is never left running when its fill stops (cancelled at shutdown): the file's
descriptor is closed by the fill's end, and a write still going on it would land in
whatever file took the number next.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from pullzone.cache.bodies import FillWriter

THREADS = 2  # per worker: two throttled writes do not hold up a third fill's


class DiskWrites:
    def __init__(self, threads: int = THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pullzone-fill-write")

    async def write(self, writer: FillWriter, chunk: bytes) -> None:
        """`writer.write(chunk)` in a thread, awaited to its end even when cancelled."""
        done = asyncio.get_running_loop().run_in_executor(self._pool, writer.write, chunk)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            while not done.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({done})
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True)
