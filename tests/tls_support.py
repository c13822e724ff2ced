"""HTTPS for the e2e tests: a trustme CA, zones with certificates, and clients that reach
`NAME:PORT` on loopback for any test name (`curl --resolve`, and getaddrinfo patched
for httpx), as a real client reaches a CDN by its DNS names."""

from __future__ import annotations

import itertools
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from server import Server

_names = itertools.count(1)
# Names tests give zones: never resolvable for real (RFC 6761), mapped to loopback here.
_LOOPBACK_SUFFIXES = (".localhost", ".test")


class Tls:
    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.cafile = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.cafile))

    def issue(self, *names: str) -> tuple[str, str]:
        """A leaf certificate for `names` (PEM) and its key."""
        leaf = self.ca.issue_cert(*names)
        return leaf.cert_chain_pems[0].bytes().decode(), leaf.private_key_pem.bytes().decode()

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cafile))
        return context

    def client(self, server: Server, *, http2: bool = False, **kw: Any) -> httpx.Client:
        return httpx.Client(verify=self.context(), http2=http2, timeout=30, **kw)


def https_zone(
    server: Server, origin_url: str, tls: Tls, *, cnames: tuple[str, ...] = (), **ssl: Any
) -> dict[str, Any]:
    """A new zone on `server` with a certificate for its fqdn and `cnames`, ssl enabled."""
    fields: dict[str, Any] = {"cnames": ",".join(cnames)} if cnames else {}
    zone = server.create_zone(origin_url, alias=f"s{next(_names)}", **fields)
    names = (zone["fqdn"], *cnames)
    crt, key = tls.issue(*names)
    zone["certid"] = server.install_certificate(zone["id"], crt, key, **ssl)
    return zone


def url(server: Server, host: str, path: str) -> str:
    return f"https://{host}:{server.tls_port}{path}"


def curl(
    server: Server, tls: Tls, host: str, path: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """curl over TLS to `host` (resolved to loopback); -D- puts the head on stdout."""
    return subprocess.run(
        [
            "curl",
            "-sS",
            "-D-",
            "--cacert",
            str(tls.cafile),
            "--resolve",
            f"{host}:{server.tls_port}:127.0.0.1",
            *args,
            url(server, host, path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def handshake(
    server: Server, name: str | None, context: ssl.SSLContext | None = None
) -> ssl.SSLSocket:
    """A TLS connection to the TLS port with SNI `name` (None: none); raises on failure."""
    if context is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", server.tls_port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname=name)
    except BaseException:
        raw.close()
        raise


@pytest.fixture(scope="session")
def loopback_names() -> Iterator[None]:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(_LOOPBACK_SUFFIXES):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("serve-tls") / "data", "--origin-timeout", "2", tls=True)
    s.start()
    yield s
    s.stop()
