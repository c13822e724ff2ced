"""`pullzone serve`: the API, the event applier and the janitor in this process, and the
edge workers in processes of their own, all sharing one data directory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import sys
from collections.abc import Iterator
from multiprocessing.process import BaseProcess

import uvicorn

from pullzone import __version__
from pullzone.bus import local
from pullzone.bus.events import Event
from pullzone.bus.signal import SeqSignal
from pullzone.cache.applier import Applier
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex, create_schema
from pullzone.config import Settings
from pullzone.control import history
from pullzone.control.app import create_app
from pullzone.control.keys import ensure_admin_key
from pullzone.edge import worker
from pullzone.server.janitor import Janitor
from pullzone.sqlite import connect

log = logging.getLogger("pullzone")


class LocalNode:
    """Single-node event delivery: apply the log to the cache index in order, then tell
    the workers (the shared sequence). The API answers only after `on_event` returns."""

    def __init__(self, settings: Settings) -> None:
        self.control = connect(settings.control_db)
        cache = connect(settings.cache_db)
        create_schema(cache)
        self.bodies = BodyStore(settings.cache_dir)
        self.index = CacheIndex(cache)
        self.applier = Applier(cache, self.bodies)
        self.signal = SeqSignal(settings.seq_path)
        self._lock = asyncio.Lock()

    def catch_up(self) -> dict[int, int]:
        """Apply every event not yet applied, then tell the workers; returns the objects
        each selective purge matched, by sequence."""
        seq = self.applier.applied_seq()
        matched = {}
        for event in local.read_since(self.control, seq):
            applied = self.applier.apply(event)
            seq, matched[applied.seq] = applied.seq, applied.matched
        self.signal.publish(seq)
        return matched

    async def on_event(self, event: Event) -> int | None:
        async with self._lock:
            return self.catch_up().get(event.seq)


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

    def stop_workers(self) -> None:
        self._stopping = True
        for process in self.workers:
            process.terminate()
        for process in self.workers:
            process.join(5)
            if process.is_alive():
                process.kill()

    async def run(self) -> int:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        for host, port in (
            (settings.edge_host, settings.edge_port),
            (settings.api_host, settings.api_port),
        ):
            try:
                _check_port_free(host, port)
            except OSError as exc:
                print(f"pullzone: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
                return 1

        node = LocalNode(settings)
        app = create_app(settings, node.on_event)
        key, key_path = ensure_admin_key(connect(settings.control_db), settings)
        node.bodies.clear_tmp()
        node.catch_up()
        janitor = Janitor(
            node.index,
            node.applier,
            node.bodies,
            settings.max_cache_size,
            lambda seq: history.mark_reclaimed(node.control, seq),
        )
        janitor.remove_orphans()

        self.workers = [self.start_worker() for _ in range(settings.workers)]
        api = _ApiServer(
            uvicorn.Config(
                app,
                host=settings.api_host,
                port=settings.api_port,
                log_level="warning",
                lifespan="off",
                server_header=False,
            )
        )
        print(f"pullzone {__version__}")
        print(
            f"  edge  http://{settings.edge_host}:{settings.edge_port}  "
            f"({settings.workers} worker{'s' if settings.workers != 1 else ''})"
        )
        print(f"  api   http://{settings.api_host}:{settings.api_port}/v2")
        print(f"  data  {settings.data_dir}")
        if key_path is not None:
            print(f"  admin key written to {key_path} (mode 0600)")
        elif key is None and settings.admin_key is None:
            print(f"  admin key: in {settings.admin_key_path}")
        else:
            print("  admin key: the PULLZONE_API_KEY you gave")
        sys.stdout.flush()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: setattr(api, "should_exit", True))
        background = [
            asyncio.create_task(self.watch_workers()),
            asyncio.create_task(janitor.run()),
        ]
        try:
            await api.serve()
        finally:
            for task in background:
                task.cancel()
            self.stop_workers()
        return 0


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(Supervisor(settings).run())
    return 0
