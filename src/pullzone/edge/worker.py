"""One edge worker process: its own event loop, sharing the node's cache on disk."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import resource
import signal
from multiprocessing.synchronize import Event as ProcessEvent

import uvloop

from pullzone.bus.signal import SeqSignal
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex
from pullzone.config import NOFILE_WANTED, Settings, default_worker_connections
from pullzone.edge import http, tickets, tls, tls_listener
from pullzone.edge.access_log import AccessLog
from pullzone.edge.bounds import Limits
from pullzone.edge.client import networks
from pullzone.edge.geoip import Countries
from pullzone.edge.lifecycle import Edge
from pullzone.edge.origin import Origin
from pullzone.edge.shields import Shields
from pullzone.edge.state import EdgeState
from pullzone.edge.stats import WorkerStats
from pullzone.sqlite import connect

log = logging.getLogger(__name__)

ACCESS_FLUSH_INTERVAL = 1.0


def _descriptor_limit() -> int:
    """RLIMIT_NOFILE, its soft limit raised first to the hard one (up to NOFILE_WANTED):
    a soft limit of 1024 is a shell's default, not a server's budget."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(hard, NOFILE_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return soft


def connection_limit(settings: Settings) -> int:
    """--worker-connections, or what this worker's descriptor limit leaves room for."""
    nofile = _descriptor_limit()
    fits = default_worker_connections(nofile)
    if settings.worker_connections is None:
        return fits
    if settings.worker_connections > fits:
        log.warning(
            "--worker-connections %d with RLIMIT_NOFILE %d: more than the %d it leaves room "
            "for; files and origin sockets may fail (503) under load",
            settings.worker_connections,
            nofile,
            fits,
        )
    return settings.worker_connections


async def serve(settings: Settings, ready: ProcessEvent | None = None) -> None:
    index = CacheIndex(connect(settings.cache_db))
    state = EdgeState(
        connect(settings.control_db),
        index,
        SeqSignal(settings.seq_path),
        settings.edge_domain,
        Countries(settings.geoip_db) if settings.geoip_db else None,
        shield=settings.is_shield,
    )
    stats = WorkerStats(settings.stats_dir)
    origin = Origin(
        settings.origin_connect_timeout,
        settings.origin_read_timeout,
        stats,
        cdn_id=settings.edge_domain,
        # An edge of a cluster asks its shields first (docs/cluster.md); a shield asks
        # the origin.
        shields=(
            Shields(settings.shields_path)
            if settings.cluster_token and not settings.is_shield
            else None
        ),
        cluster_token=settings.cluster_token,
    )
    access_log = (
        AccessLog(settings.access_log, settings.access_log_format, stats.writes)
        if settings.access_log
        else None
    )
    limits = Limits(settings.max_object_size, settings.max_cache_size)
    edge = Edge(
        state,
        index,
        BodyStore(settings.cache_dir),
        origin,
        stats,
        limits,
        access_log,
        https_port=settings.edge_tls_port or 443,
        trusted_proxies=networks(settings.trusted_proxies),
        internal_token=settings.internal_token,
    )
    # LRU times and log lines are written from a thread, off the event loop (the LRU
    # times on a connection of their own).
    access_index = index.reopened()
    connections = http.Connections(connection_limit(settings), stats.fault)
    handle = edge.from_edges if settings.is_shield else edge.handle
    server = await http.serve(
        handle,
        host=settings.edge_host,
        port=settings.edge_port,
        on_done=edge.finished,
        connections=connections,
        proxy_header=stats.fault if settings.proxy_protocol else None,
    )

    loop = asyncio.get_running_loop()
    tls_server = None
    ticket_keys = None
    if settings.edge_tls_port is not None:
        # HTTPS, shared among the workers as the plain port is (SO_REUSEPORT).
        certificates = tls.Certificates(state, edge.catch_up, settings.tls_dir)
        # The node's session ticket key, and each one it rotates to (edge/tickets.py).
        ticket_keys = tickets.TicketKeys(certificates.context, settings.ticket_key_path)
        ticket_keys.refresh()
        tls_server = tls_listener.Listener(
            certificates.context,
            tls_listener.http_protocols(handle, edge.finished, connections),
            stats.fault,
            proxy_header=settings.proxy_protocol,  # the header comes before the handshake
        )
        tls_server.listen(settings.edge_tls_host, settings.edge_tls_port)

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), ACCESS_FLUSH_INTERVAL)
            if ticket_keys is not None:
                ticket_keys.refresh()
            # Each write is best-effort: out of descriptors, a full disk or a locked
            # database costs this second's LRU times, log lines or snapshot, never the
            # worker; it is counted (stats.WriteFailures).
            lines = access_log.take() if access_log is not None else b""
            with stats.writes.soft("lru"):
                await asyncio.to_thread(access_index.touch, edge.take_accesses())
            if lines and access_log is not None:
                await asyncio.to_thread(access_log.write, lines)
            stats.connections = len(connections.open)
            with stats.writes.soft("stats"):
                stats.write(state.applied)
    finally:
        connections.close()
        server.close()
        if tls_server is not None:
            tls_server.close()
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
