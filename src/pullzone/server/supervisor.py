"""`pullzone serve`: the API, the event log's appliers and the janitor in this process, and
the edge workers in processes of their own, all sharing one data directory. A cluster
node runs the edge, the API or both (`Settings.role`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from pullzone import __version__
from pullzone.bus import local
from pullzone.bus.jetstream import BusUnavailable, JetStreamBus
from pullzone.config import Settings
from pullzone.control import history
from pullzone.control.app import create_app
from pullzone.control.keys import ensure_admin_key
from pullzone.control.log import EventLog, LocalLog
from pullzone.control.stats import NodeStats
from pullzone.control.stats_recorder import Recorder
from pullzone.control.stats_report import LocalFigures
from pullzone.edge import internal, tickets, worker
from pullzone.server.acme import AcmeScheduler
from pullzone.server.cache_node import CacheNode
from pullzone.server.cluster import ClusterNode, DataMismatch
from pullzone.server.janitor import Janitor
from pullzone.server.stats_exchange import StatsExchange

log = logging.getLogger("pullzone")


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the supervisor stops it, then the workers,
    instead of uvicorn re-raising the signal and killing the process before that."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self.workers: list[BaseProcess] = []
        self._stopping = False

    def start_worker(self) -> BaseProcess:
        ready = self._context.Event()
        process = self._context.Process(
            target=worker.main, args=(self.settings, ready), name="pullzone-edge", daemon=True
        )
        process.start()
        if not ready.wait(30):
            raise RuntimeError("an edge worker did not start within 30 s")
        return process

    async def watch_workers(self) -> None:
        """Replace a worker that died (crash or kill -9): the edge keeps every core busy."""
        while not self._stopping:
            await asyncio.sleep(0.5)
            for i, process in enumerate(self.workers):
                if not process.is_alive() and not self._stopping:
                    log.warning(
                        "edge worker %s exited (%s); starting another",
                        process.pid,
                        process.exitcode,
                    )
                    self.workers[i] = await asyncio.to_thread(self.start_worker)

    async def rotate_ticket_key(self) -> None:
        """A new TLS session ticket key every ROTATE_EVERY, the previous one kept for the
        tickets it issued (the workers pick them up, edge/tickets.py)."""
        while True:
            await asyncio.sleep(tickets.ROTATE_EVERY)
            try:
                await asyncio.to_thread(
                    tickets.write_key, self.settings.ticket_key_path, keep_previous=True
                )
            except OSError as exc:
                log.warning("TLS ticket key not rotated: %s", exc)

    def stop_workers(self) -> None:
        self._stopping = True
        for process in self.workers:
            process.terminate()
        for process in self.workers:
            process.join(5)
            if process.is_alive():
                process.kill()

    async def run(self) -> int:
        # The secret of the node's requests to its own edge (edge/internal.py), new at
        # each start: the workers get it with their settings.
        self.settings = dataclasses.replace(self.settings, internal_token=internal.new_token())
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        listens = [(settings.edge_host, settings.edge_port)] if settings.runs_edge else []
        if settings.runs_edge and settings.edge_tls_port is not None:
            listens.append((settings.edge_tls_host, settings.edge_tls_port))
        listens += [(settings.api_host, settings.api_port)] if settings.runs_api else []
        for host, port in listens:
            try:
                _check_port_free(host, port)
            except OSError as exc:
                print(f"pullzone: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
                return 1

        cache = CacheNode(settings) if settings.runs_edge else None
        cluster: ClusterNode | None = None
        event_log: EventLog
        if settings.cluster:
            try:
                cluster = await self._join_cluster(cache)
            except (BusUnavailable, DataMismatch) as exc:
                print(f"pullzone: cannot join the cluster: {exc}", file=sys.stderr)
                return 1
            event_log = cluster
            # The workers ask shields with the cluster's secret; a shield answers it only.
            token = cluster.cluster_token
            self.settings = dataclasses.replace(
                self.settings,
                cluster_token=token,
                internal_token=token if settings.is_shield else settings.internal_token,
            )
        else:
            assert cache is not None
            bound_to = local.bind_source(cache.control, local.LOCAL)
            if bound_to is not None:
                print(
                    f"pullzone: {settings.data_dir} holds a cluster node's data: run it with "
                    "--cluster, or give this single node another --data-dir",
                    file=sys.stderr,
                )
                return 1
            event_log = LocalLog(settings, cache.on_event)

        background: list[asyncio.Task[None]] = []
        # The traffic history (control/stats_recorder.py) of a node with an edge.
        recorder = Recorder(settings) if cache is not None else None
        if cache is not None:
            shutil.rmtree(settings.stats_dir, ignore_errors=True)  # counters start at zero
            cache.bodies.clear_tmp()
            cache.catch_up()
            janitor = Janitor(
                cache.index,
                cache.applier,
                cache.bodies,
                settings.max_cache_size,
                lambda seq: history.mark_reclaimed(cache.control, seq),
                settings.stats_dir,
            )
            janitor.remove_orphans()
            if settings.edge_tls_port is not None:
                # One ticket key for every worker: a session resumes on any of them.
                tickets.write_key(settings.ticket_key_path)
                background.append(asyncio.create_task(self.rotate_ticket_key()))
            self.workers = [self.start_worker() for _ in range(settings.workers)]
            background += [
                asyncio.create_task(self.watch_workers()),
                asyncio.create_task(janitor.run()),
            ]
        if recorder is not None:
            background.append(asyncio.create_task(recorder.run(), name="stats-history"))
        exchange = None
        if cluster is not None:  # every edge answers for its figures (server/stats_exchange.py)
            mine = LocalFigures(NodeStats(settings), recorder) if recorder is not None else None
            exchange = StatsExchange(cluster.bus, settings.node_id, mine)
            with contextlib.suppress(BusUnavailable):
                await exchange.start()
        if settings.acme_directory and settings.runs_api:
            # Automatic certificates: ordered by the node that owns ACME (server/acme.py).
            acme = AcmeScheduler(settings, event_log)
            if cluster is not None:
                acme.owner = cluster.acme_owner
            background.append(asyncio.create_task(acme.run(), name="acme"))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            if settings.runs_api:
                app = create_app(
                    settings,
                    event_log,
                    recorder=recorder,
                    cluster_stats=exchange.gather if exchange is not None else None,
                )
                admin_key = ensure_admin_key(app.state.control.conn, settings)
                api = self._api_server(app)
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, lambda: setattr(api, "should_exit", True))
                self._announce(admin_key)
                await api.serve()
            else:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, stop.set)
                self._announce(None)
                await stop.wait()
        finally:
            for task in background:
                task.cancel()
            self.stop_workers()
            if recorder is not None:
                recorder.close()  # what the last minute counted
            if cluster is not None:
                await cluster.close()
        return 0

    async def _join_cluster(self, cache: CacheNode | None) -> ClusterNode:
        s = self.settings
        bus = await JetStreamBus.connect(
            list(s.cluster),
            s.node_id,
            role=s.role,
            replicas=s.replicas,
            retention=s.stream_retention,
        )
        node = ClusterNode(s, bus, cache)
        try:
            await node.start()
        except BaseException:
            await node.close()
            raise
        return node

    def _api_server(self, app: FastAPI) -> _ApiServer:
        s = self.settings
        config = uvicorn.Config(
            app,
            host=s.api_host,
            port=s.api_port,
            log_level="warning",
            lifespan="off",
            server_header=False,
            ssl_certfile=s.api_cert,
            ssl_keyfile=s.api_cert_key,
        )
        return _ApiServer(config)

    def _announce(self, admin_key: tuple[str | None, Path | None] | None) -> None:
        s = self.settings
        print(f"pullzone {__version__}")
        if s.cluster:
            print(f"  node  {s.node_id} ({s.role}) in the cluster at {', '.join(s.cluster)}")
        if s.runs_edge:
            workers = f"{s.workers} worker{'s' if s.workers != 1 else ''}"
            print(f"  edge  http://{s.edge_host}:{s.edge_port}  ({workers})")
            if s.edge_tls_port is not None:
                print(f"  edge  https://{s.edge_tls_host}:{s.edge_tls_port}  (SNI)")
        if s.runs_api:
            scheme = "https" if s.api_cert else "http"
            print(f"  api   {scheme}://{s.api_host}:{s.api_port}/v2")
        print(f"  data  {s.data_dir}")
        if admin_key is not None:
            key, key_path = admin_key
            if key_path is not None:
                print(f"  admin key written to {key_path} (mode 0600)")
            elif key is None and s.admin_key is None:
                print(f"  admin key: in {s.admin_key_path}")
            else:
                print("  admin key: the PULLZONE_API_KEY you gave")
        sys.stdout.flush()


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pullzone.audit").setLevel(logging.INFO)  # a line per purge
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(Supervisor(settings).run())
    return 0
