"""One edge worker process: its own event loop, sharing the node's cache on disk."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
from multiprocessing.synchronize import Event as ProcessEvent

import uvloop

from pullzone.bus.signal import SeqSignal
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex
from pullzone.config import Settings
from pullzone.edge import http
from pullzone.edge.access_log import AccessLog
from pullzone.edge.bounds import Limits
from pullzone.edge.lifecycle import Edge
from pullzone.edge.origin import Origin
from pullzone.edge.state import EdgeState
from pullzone.edge.stats import WorkerStats
from pullzone.sqlite import connect

log = logging.getLogger(__name__)

ACCESS_FLUSH_INTERVAL = 1.0


async def serve(settings: Settings, ready: ProcessEvent | None = None) -> None:
    index = CacheIndex(connect(settings.cache_db))
    state = EdgeState(
        connect(settings.control_db),
        index,
        SeqSignal(settings.seq_path),
        settings.edge_domain,
    )
    stats = WorkerStats(settings.stats_dir)
    origin = Origin(settings.origin_connect_timeout, settings.origin_read_timeout, stats)
    access_log = (
        AccessLog(settings.access_log, settings.access_log_format) if settings.access_log else None
    )
    limits = Limits(settings.max_object_size, settings.max_cache_size)
    edge = Edge(state, index, BodyStore(settings.cache_dir), origin, stats, limits, access_log)
    # LRU times and log lines are written from a thread, off the event loop (the LRU
    # times on a connection of their own).
    access_index = CacheIndex(connect(settings.cache_db))
    server = await http.serve(
        edge.handle, host=settings.edge_host, port=settings.edge_port, on_done=edge.finished
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), ACCESS_FLUSH_INTERVAL)
            lines = access_log.take() if access_log is not None else b""
            await asyncio.to_thread(access_index.touch, edge.take_accesses())
            if lines and access_log is not None:
                await asyncio.to_thread(access_log.write, lines)
            stats.write(state.applied)
    finally:
        server.close()
        if access_log is not None:
            access_log.close()
        await edge.filler.close()
        await origin.close()


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the supervisor dies, even by kill -9, so no orphaned
    worker keeps the edge port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(settings: Settings, ready: ProcessEvent | None = None) -> None:
    """Entry point of a worker process (spawned by the supervisor)."""
    _die_with_parent()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker %(message)s")
    uvloop.run(serve(settings, ready))
