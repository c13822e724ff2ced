"""A real `pullzone serve` process for tests, on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
from ports import free_port

API_KEY = "test-admin-key-0123456789"
T = TypeVar("T")


def listening_ports(pids: list[int]) -> set[int]:
    """The TCP ports on which any of `pids` listens (/proc: a socket's inode among the
    process's descriptors, in LISTEN state in /proc/net/tcp or tcp6)."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: TCP_LISTEN
                    ports.add(int(fields[1].rpartition(":")[2], 16))
    return ports


def children(pid: int) -> list[int]:
    """Children of every thread of `pid` (a worker may be started from a thread)."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


class Server:
    """`pullzone serve` on free loopback ports.

    `role` is the node's cluster role: "all" (edge and API, the default and the only one
    without --cluster), "edge" or "shield" (ready once the edge port accepts connections)
    or "api" (ready once the API answers). `own_group` runs the node in a process group of its own,
    so `kill()` takes its workers down with it, as kill -9 of a whole node would.
    `nofile` sets the node's RLIMIT_NOFILE (soft and hard: its workers cannot raise it).
    """

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        workers: int = 2,
        role: str = "all",
        own_group: bool = False,
        nofile: int | None = None,
        tls: bool = False,
    ) -> None:
        assert role in ("all", "edge", "api", "shield"), role
        self.data_dir = data_dir
        self.role = role
        self.own_group = own_group
        self.nofile = nofile
        self.edge_port = free_port()
        self.api_port = free_port()
        # --edge-tls on a port of its own (`tls`); 0: no HTTPS listener.
        self.tls_port = free_port() if tls else 0
        self.edge_url = f"http://127.0.0.1:{self.edge_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}/v2"
        self.args = [
            sys.executable,
            "-m",
            "pullzone",
            "serve",
            "--data-dir",
            str(data_dir),
            "--edge",
            f"127.0.0.1:{self.edge_port}",
            "--api",
            f"127.0.0.1:{self.api_port}",
            "--workers",
            str(workers),
            # Tests make bursts of API calls; rate limits have tests of their own
            # (a later --api-rate-limit in `extra` wins).
            "--api-rate-limit",
            "0",
            *(["--role", role] if role != "all" else []),
            *(["--edge-tls", f"127.0.0.1:{self.tls_port}"] if tls else []),
            *extra,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"serve-{self.api_port}.log"
        self.log: IO[bytes] | None = None
        self.api = httpx.Client(base_url=self.api_url, headers={"X-API-Key": API_KEY}, timeout=30)
        self.edge = httpx.Client(base_url=self.edge_url, timeout=30)

    def start(self, timeout: float = 60.0) -> Server:
        return self.launch().wait_ready(timeout)

    def launch(self) -> Server:
        """Start the process without waiting for it (see `wait_ready`); the log is appended
        to, so a restarted node keeps the output of its earlier runs."""
        env = {**os.environ, "PULLZONE_API_KEY": API_KEY}
        if self.log is not None:
            self.log.close()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.args,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=self.own_group,
            preexec_fn=self._limit_files if self.nofile is not None else None,
        )
        return self

    def _limit_files(self) -> None:
        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def worker_pids(self) -> list[int]:
        """The edge worker processes."""
        assert self.process is not None
        return [
            c
            for c in children(self.process.pid)
            if b"spawn_main" in (cmdline := Path(f"/proc/{c}/cmdline").read_bytes())
            and b"resource_tracker" not in cmdline
        ]

    def _ready(self) -> bool:
        if self.role in ("all", "api") and self.api.get("/zones/http/pull").status_code != 200:
            return False
        if self.role in ("all", "edge", "shield"):
            for port in (self.edge_port, self.tls_port):
                if port:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        pass
        return True

    def wait_ready(self, timeout: float = 60.0) -> Server:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pullzone serve exited: {self.output()}")
            try:
                if self._ready():
                    return self
            except (httpx.TransportError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"pullzone serve did not become ready: {self.output()}")

    def output(self) -> str:
        if self.log is not None:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def listening(self) -> set[int]:
        """The ports this node and its workers listen on."""
        assert self.process is not None
        pid = self.process.pid
        return listening_ports([pid, *children(pid)])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL, no goodbye: the whole process group with `own_group` (the workers too),
        else the main process (its workers die with it). Returns once every process of the
        group is gone (bounded)."""
        if self.process is None or self.process.poll() is not None:
            return
        pid = self.process.pid
        if self.own_group:
            os.killpg(pid, signal.SIGKILL)
        else:
            self.process.kill()
        self.process.wait(timeout)
        if not self.own_group:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    def create_zone(self, origin: str, **fields: Any) -> dict[str, Any]:
        response = self.api.post(
            "/zones/http/pull/new", json={"name": "t", "origin": origin, **fields}
        )
        assert response.status_code == 200, response.text
        return dict(response.json()["zone"])

    def install_certificate(
        self,
        zone_id: int,
        crt: str,
        key: str,
        cabundle: str = "",
        *,
        cert_id: int = 0,
        **ssl: Any,
    ) -> int:
        """Give zone `zone_id` a certificate (a new one, or certificate `cert_id`
        replaced) with `ssl` enabled (other ssl block fields in `ssl`, e.g. http2=True),
        through the API as a user would; returns the certificate's id."""
        if cert_id:
            changed = self.api.post(f"/account/ssl/{cert_id}", json={"crt": crt, "key": key})
        else:
            body = {"name": f"test-{zone_id}", "crt": crt, "key": key, "cabundle": cabundle}
            changed = self.api.post("/account/ssl/new", json=body)
        assert changed.status_code == 200, changed.text
        cert_id = int(changed.json()["cert"]["id"])
        self.set_ssl(zone_id, enabled=True, certid=cert_id, **ssl)
        return cert_id

    def set_ssl(self, zone_id: int, **ssl: Any) -> None:
        """Change the zone's ssl block alone (`POST /v2/zones/http/pull/{id}/ssl`)."""
        fields = {
            name: ("Y" if v else "N") if isinstance(v, bool) else v for name, v in ssl.items()
        }
        changed = self.api.post(f"/zones/http/pull/{zone_id}/ssl", json=fields)
        assert changed.status_code == 200, changed.text

    def commit(self, zone_id: int, change: Any, edge_domain: str = "localhost") -> None:
        """Commit an event (a `bus.events` record) to the node's log, as the API would. A
        single node's log is its control.db: the node sees the event at its next look
        (the ACME scheduler polls the log position; the edge workers read it with the
        node's next event). A cluster node's is the JetStream stream."""
        from pullzone.bus.events import Event
        from pullzone.control.replica import Replica
        from pullzone.sqlite import connect

        if "--cluster" in self.args:
            asyncio.run(self._publish(zone_id, change))
            return
        with contextlib.closing(connect(self.data_dir / "control.db")) as conn:
            replica = Replica(conn, edge_domain)
            replica.apply(Event.of(replica.position + 1, zone_id, change, time.time()))

    async def _publish(self, zone_id: int, change: Any) -> None:
        from pullzone.bus.jetstream import JetStreamBus

        urls = self.args[self.args.index("--cluster") + 1].split(",")
        bus = await JetStreamBus.connect(urls, "tests", observe=True)
        try:
            await bus.publish(change.KIND, zone_id, change.to_payload())
        finally:
            await bus.close()

    def zone_ssl(self, zone_id: int) -> dict[str, Any]:
        """The zone's `ssl` block as the zone API answers it."""
        response = self.api.get(f"/zones/http/pull/{zone_id}")
        assert response.status_code == 200, response.text
        return dict(response.json()["zone"]["ssl"])

    def zone_ssl_stored(self, zone_id: int) -> dict[str, Any] | None:
        """The zone's `ssl` block as this node stored it (None: no such zone here)."""
        from pullzone.zones.model import Zone

        with contextlib.closing(sqlite3.connect(self.data_dir / "control.db")) as conn:
            row = conn.execute("SELECT record FROM zones WHERE id = ?", (zone_id,)).fetchone()
        return None if row is None else Zone.from_record(json.loads(row[0])).ssl.to_api()

    def get(self, host: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        return self.edge.get(path, headers=headers, **kwargs)

    def purge(
        self, zone_id: int, files: list[str] | None = None, delete: bool = False
    ) -> httpx.Response:
        params = {"delete": "true"} if delete else {}
        body = {"files": files} if files is not None else None
        return self.api.post(f"/zones/http/pull/{zone_id}/purge", params=params, json=body)


def until(produce: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0) -> T:
    """Ask `produce` until `done` holds for its answer (the workers' next snapshot)."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def samples(server: Server, key: str = API_KEY) -> dict[str, float]:
    """/metrics as {'name{labels}': value}, read the way Prometheus is configured to."""
    response = server.api.get(
        server.api_url.removesuffix("/v2") + "/metrics",
        headers={"X-API-Key": "", "Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    out = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
