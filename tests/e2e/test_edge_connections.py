"""Connection floods at the edge: more idle and slowloris connections than a worker has
file descriptors, and request heads that trickle in. No worker exits, HITs keep being
served, the oldest idle connections go first, and a slow head is cut at its deadline."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from origin import Origin, Reply
from server import Server
from tls_support import Tls, https_zone, loopback_names, tls, url

from pullzone.config import default_worker_connections
from pullzone.edge.http import HEADER_TIMEOUT

__all__ = ["loopback_names", "tls"]  # the fixtures the HTTPS test uses

NOFILE = 128  # the server's RLIMIT_NOFILE (its workers cannot raise it)
IDLE = 8  # keep-alive connections that made a request and wait
FLOOD = 160  # then this many slowloris connections: more than NOFILE in all
SLOW_HEAD = b"GET /slow HTTP/1.1\r\nHost: x\r\n"  # never finished


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.edge_port), timeout=10)


def _closed_by_edge(s: socket.socket, timeout: float) -> bool:
    """The edge closed `s` (EOF or reset) within `timeout`, reading what it sent."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([s], [], [], left)[0]:
            return False
        try:
            if not s.recv(65536):
                return True
        except OSError:
            return True
    return False


def _hit(server: Server, host: str, path: str) -> str:
    """X-Cache of a GET on a connection of its own."""
    response = httpx.get(server.edge_url + path, headers={"Host": host}, timeout=10)
    assert response.status_code == 200
    return response.headers["x-cache"]


WRITES = "pullzone_write_failures_total"


def _faults(server: Server, metric: str = "pullzone_edge_faults_total") -> dict[str, float]:
    url = server.api_url.removesuffix("/v2") + "/metrics"
    out = {}
    for line in server.api.get(url).text.splitlines():
        if line.startswith(metric + "{"):
            name, _, value = line.rpartition(" ")
            out[name.split('"')[1]] = float(value)
    return out


@pytest.fixture()
def small(tmp_path: Path) -> Iterator[Server]:
    """One worker with NOFILE descriptors and the default --worker-connections."""
    s = Server(tmp_path / "data", workers=1, nofile=NOFILE).start()
    yield s
    s.stop()


def test_a_flood_of_idle_and_slow_connections_never_kills_a_worker(
    small: Server, origin: Origin
) -> None:
    limit = default_worker_connections(NOFILE)
    assert IDLE < limit < FLOOD
    origin.route("/flood.txt", Reply(200, [("Cache-Control", "max-age=600")], b"still here"))
    host = str(small.create_zone(origin.url, alias="flood")["fqdn"])
    assert _hit(small, host, "/flood.txt") == "MISS"
    workers = small.worker_pids()

    idle = []
    for _ in range(IDLE):  # each has had its answer, and keeps the connection open
        s = _connect(small)
        s.sendall(f"GET /flood.txt HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert b"X-Cache: HIT" in s.recv(65536)
        idle.append(s)
    flood = []
    try:
        for _ in range(FLOOD):
            s = _connect(small)
            with contextlib.suppress(OSError):  # shed (or dropped) already
                s.sendall(SLOW_HEAD)
            flood.append(s)
        # The oldest idle connections were shed first, every one of them.
        assert all(_closed_by_edge(s, 5) for s in idle)
        assert _hit(small, host, "/flood.txt") == "HIT"  # during the flood
        # Served or not, the newest connections are the ones the worker still holds.
        assert not _closed_by_edge(flood[-1], 0.5)
        deadline = time.monotonic() + 10  # the counters reach /metrics within a second
        while _faults(small).get("connection_shed", 0) < FLOOD + IDLE - limit:
            assert time.monotonic() < deadline, _faults(small)
            time.sleep(0.1)
        assert _hit(small, host, "/flood.txt") == "HIT"
    finally:
        for s in idle + flood:
            s.close()
    assert _hit(small, host, "/flood.txt") == "HIT"  # and after
    assert small.worker_pids() == workers and small.running  # no worker ever exited
    assert "Traceback" not in small.output()


def test_out_of_descriptors_a_request_gets_503_and_the_worker_lives(
    tmp_path: Path, origin: Origin
) -> None:
    """--worker-connections above what RLIMIT_NOFILE fits: the descriptors do run out."""
    s = Server(tmp_path / "data", "--worker-connections", "1000", workers=1, nofile=NOFILE)
    s.start()
    try:
        origin.route("/files.txt", Reply(200, [("Cache-Control", "max-age=600")], b"files"))
        host = str(s.create_zone(origin.url, alias="nofiles")["fqdn"])
        workers = s.worker_pids()
        first = _connect(s)  # accepted while there are descriptors to spare
        post = _connect(s)
        assert not _closed_by_edge(post, 0.2)
        flood = [_connect(s) for _ in range(FLOOD)]  # what does not fit is dropped
        try:
            deadline = time.monotonic() + 10  # a stats snapshot failed: the worker is full
            while "stats write failed" not in s.output():
                assert time.monotonic() < deadline, s.output()
                time.sleep(0.1)
            # A fill's first step, its cache file, finds no descriptor.
            first.sendall(f"GET /files.txt HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert first.recv(65536).startswith(b"HTTP/1.1 503 ")
            # A request passed to the origin finds no descriptor for the origin socket.
            post.sendall(
                f"POST /files.txt HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            assert post.recv(65536).startswith(b"HTTP/1.1 502 ")
        finally:
            for c in [first, post, *flood]:
                c.close()
        assert _hit(s, host, "/files.txt") == "MISS"  # descriptors are back: served
        deadline = time.monotonic() + 10
        while _faults(s).get("out_of_files", 0) < 2 or "stats" not in _faults(s, WRITES):
            assert time.monotonic() < deadline, (_faults(s), _faults(s, WRITES))
            time.sleep(0.1)
        assert s.worker_pids() == workers and s.running
    finally:
        s.stop()


@pytest.mark.usefixtures("loopback_names")
def test_out_of_descriptors_the_https_listener_pauses_then_serves_again(
    tmp_path: Path, origin: Origin, tls: Tls
) -> None:
    """More TLS connections than the worker has descriptors, none of them handshaking:
    accept fails with EMFILE, is counted and paused (edge/tls_listener.py), not retried
    in a busy loop; once they go, HTTPS is served again by the same worker."""
    s = Server(
        tmp_path / "data", "--worker-connections", "1000", workers=1, nofile=NOFILE, tls=True
    )
    s.start()
    try:
        zone = https_zone(s, origin.url, tls)
        origin.route("/tls-files.txt", Reply(200, [("Cache-Control", "max-age=600")], b"tls"))
        workers = s.worker_pids()
        flood = []
        try:
            for _ in range(FLOOD):  # each accepted one holds a descriptor until its timeout
                flood.append(socket.create_connection(("127.0.0.1", s.tls_port), timeout=10))
            deadline = time.monotonic() + 10  # a stats snapshot failed: the worker is full
            while "stats write failed" not in s.output():
                assert time.monotonic() < deadline, s.output()
                time.sleep(0.1)
        finally:
            for c in flood:
                c.close()
        deadline = time.monotonic() + 10  # counted, once the worker can write its stats
        while _faults(s).get("out_of_files", 0) < 1:
            assert time.monotonic() < deadline, _faults(s)
            time.sleep(0.1)
        with tls.client(s) as client:
            r = client.get(url(s, zone["fqdn"], "/tls-files.txt"))
            assert (r.status_code, r.content) == (200, b"tls")
        assert s.worker_pids() == workers and s.running
        assert "Traceback" not in s.output()
    finally:
        s.stop()


def test_a_head_sent_a_line_a_second_is_cut_at_its_deadline(server: Server) -> None:
    with _connect(server) as s:
        s.sendall(b"GET /trickle HTTP/1.1\r\n")
        started = time.monotonic()
        answer = b""
        for n in range(int(HEADER_TIMEOUT) * 2):  # a line a second, twice the deadline
            if select.select([s], [], [], 1.0)[0]:
                answer = s.recv(65536)
                break
            s.sendall(b"X-Line-%d: 1\r\n" % n)
        took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert HEADER_TIMEOUT <= took < HEADER_TIMEOUT + 2.5
        assert _closed_by_edge(s, 6)  # after its lingering close
