"""TLS session resumption across edge workers: a TLS 1.3 session ticket issued by one
worker resumes on every worker of the node (their ticket keys are the node's, written
by the supervisor, docs/edge.md), so a client whose next connection the kernel hands to
another worker (SO_REUSEPORT) still skips the full handshake."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from origin import Origin, Reply
from server import Server
from tls_support import Tls, https_zone, loopback_names, tls

__all__ = ["loopback_names", "tls"]  # the fixtures this module uses
pytestmark = pytest.mark.usefixtures("loopback_names")

CONNECTIONS = 24  # new connections resuming one session: both workers get some


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("serve-resume") / "data", workers=2, tls=True)
    s.start()
    yield s
    s.stop()


def served_by(server: Server, conn: socket.socket) -> int:
    """The worker process holding the server's end of `conn` (its socket inode in
    /proc/net/tcp, then the worker whose descriptors include it)."""
    ours = conn.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rpartition(":")[2], 16)
        remote_port = int(fields[2].rpartition(":")[2], 16)
        if local_port == server.tls_port and remote_port == ours:
            inode = fields[9]
    assert inode is not None, "the server's end of the connection is not in /proc/net/tcp"
    for pid in server.worker_pids():
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds socket {inode}")


def exchange(
    server: Server, context: ssl.SSLContext, host: str, path: str, session: Any = None
) -> tuple[ssl.SSLSocket, int]:
    """One request on a new TLS 1.3 connection (offering `session`), answered whole; the
    connection is left open so its worker can be found."""
    raw = socket.create_connection(("127.0.0.1", server.tls_port), timeout=10)
    conn = context.wrap_socket(raw, server_hostname=host, session=session)
    assert conn.version() == "TLSv1.3"
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while not data.endswith(b"resumed"):  # the tickets come after the handshake: read them
        piece = conn.recv(65536)
        assert piece, data
        data += piece
    assert data.startswith(b"HTTP/1.1 200")
    return conn, served_by(server, conn)


def test_a_session_resumes_on_every_worker(
    two_workers: Server, origin: Origin, tls: Tls, path: str
) -> None:
    zone = https_zone(two_workers, origin.url, tls)
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=600")], body=b"resumed"))
    context = tls.context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    first, issuer = exchange(two_workers, context, zone["fqdn"], path)
    session = first.session
    assert session is not None and session.has_ticket
    first.close()

    workers: dict[int, list[bool]] = {}
    for _ in range(CONNECTIONS):
        conn, pid = exchange(two_workers, context, zone["fqdn"], path, session)
        workers.setdefault(pid, []).append(conn.session_reused)
        conn.close()
    assert len(workers) == 2, f"all {CONNECTIONS} connections went to one worker: {workers}"
    other = next(pid for pid in workers if pid != issuer)
    assert all(workers[other]), f"the other worker did a full handshake: {workers}"
    assert all(workers[issuer]), workers
