"""A real ACME CA for tests: Debian's `pebble`, with `pebble-challtestsrv` as its DNS
(every name resolves to 127.0.0.1), on loopback only, every wait bounded.

Pebble validates HTTP-01 challenges by connecting to `http_port` of the address the name
resolves to: give it the edge's plain port. Its own TLS (the directory) uses a test CA
made here (`ca_bundle`: what `--acme-ca-bundle` is given); the certificates it issues
chain to a root it makes at each start (`root()`, from its management interface)."""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import trustme
from ports import free_ports


def pebble_binaries() -> tuple[str, str] | None:
    pebble, dns = shutil.which("pebble"), shutil.which("pebble-challtestsrv")
    return None if pebble is None or dns is None else (pebble, dns)


class Pebble:
    def __init__(
        self,
        tmp: Path,
        http_port: int,
        *,
        validity: int | None = None,
        blocklist: tuple[str, ...] = (),
    ) -> None:
        found = pebble_binaries()
        if found is None:
            raise RuntimeError("pebble not found (apt-get install pebble)")
        self.pebble_bin, self.dns_bin = found
        self.dir = tmp
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, self.management_port, self.dns_port, self.dns_management, self.tls_port = (
            free_ports(5)
        )
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_bundle = self.dir / "pebble-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        cert.private_key_pem.write_to_path(str(self.dir / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.dir / "cert.pem"))
        config: dict[str, Any] = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(self.dir / "cert.pem"),
            "privateKey": str(self.dir / "key.pem"),
            "httpPort": http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "domainBlocklist": list(blocklist),
        }
        if validity is not None:
            config["certificateValidityPeriod"] = validity
        (self.dir / "pebble-config.json").write_text(json.dumps({"pebble": config}))
        self.pebble: subprocess.Popen[bytes] | None = None
        self.dns: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> Pebble:
        with open(self.dir / "challtestsrv.log", "ab") as out:
            args = [
                self.dns_bin,
                "-defaultIPv4", "127.0.0.1",
                "-defaultIPv6", "",
                "-dns01", f"127.0.0.1:{self.dns_port}",
                "-http01", "",
                "-https01", "",
                "-tlsalpn01", "",
                "-management", f"127.0.0.1:{self.dns_management}",
            ]  # fmt: skip
            self.dns = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.start_pebble(timeout)
        return self

    def start_pebble(self, timeout: float = 15.0) -> None:
        env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PATH": "/usr/bin:/bin"}
        with open(self.dir / "pebble.log", "ab") as out:
            args = [
                self.pebble_bin,
                "-config", str(self.dir / "pebble-config.json"),
                "-dnsserver", f"127.0.0.1:{self.dns_port}",
            ]  # fmt: skip
            self.pebble = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.dir,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.pebble.poll() is not None:
                raise RuntimeError(f"pebble exited:\n{self.log_tail()}")
            try:
                self._get(self.directory)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pebble did not start:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def _get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return bytes(response.read())

    def root(self) -> bytes:
        """The PEM root the certificates it issues chain to."""
        return self._get(f"https://127.0.0.1:{self.management_port}/roots/0")

    def log_tail(self, lines: int = 40) -> str:
        path = self.dir / "pebble.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop_pebble(self) -> None:
        if self.pebble is not None and self.pebble.poll() is None:
            self.pebble.send_signal(signal.SIGTERM)
            try:
                self.pebble.wait(10)
            except subprocess.TimeoutExpired:
                self.pebble.kill()
                self.pebble.wait(5)
        self.pebble = None

    def stop(self) -> None:
        self.stop_pebble()
        if self.dns is not None and self.dns.poll() is None:
            self.dns.kill()
            self.dns.wait(5)
        self.dns = None
