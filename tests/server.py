"""A real `pullzone serve` process for tests, on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

API_KEY = "test-admin-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, *extra: str, workers: int = 2) -> None:
        self.data_dir = data_dir
        self.edge_port = free_port()
        self.api_port = free_port()
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
            *extra,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(base_url=self.api_url, headers={"X-API-Key": API_KEY}, timeout=30)
        self.edge = httpx.Client(base_url=self.edge_url, timeout=30)

    def start(self) -> Server:
        env = {**os.environ, "PULLZONE_API_KEY": API_KEY}
        self.log = open(self.data_dir.parent / f"serve-{self.api_port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.args, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pullzone serve exited: {self.output()}")
            try:
                if self.api.get("/zones/http/pull").status_code == 200:
                    with socket.create_connection(("127.0.0.1", self.edge_port), timeout=1):
                        return self
            except (httpx.TransportError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"pullzone serve did not become ready: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return (self.data_dir.parent / f"serve-{self.api_port}.log").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def create_zone(self, origin: str, **fields: Any) -> dict[str, Any]:
        response = self.api.post(
            "/zones/http/pull/new", json={"name": "t", "origin": origin, **fields}
        )
        assert response.status_code == 200, response.text
        return dict(response.json()["zone"])

    def get(self, host: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        return self.edge.get(path, headers=headers, **kwargs)

    def purge(
        self, zone_id: int, files: list[str] | None = None, delete: bool = False
    ) -> httpx.Response:
        params = {"delete": "true"} if delete else {}
        body = {"files": files} if files is not None else None
        return self.api.post(f"/zones/http/pull/{zone_id}/purge", params=params, json=body)
