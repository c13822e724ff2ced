"""Fills are bounded (edge/bounds.py): an endless origin body (chunked, or delimited by the
origin closing) never fills the disk. Past --max-object-size it is not stored and its
client streams the rest from the origin; a fill never takes the cache past
--max-cache-size (it evicts to make room as it writes); a fill nobody reads any more is
abandoned, and its origin connection closed, soon after its last client left."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from origin import Origin, Reply
from server import API_KEY, Server

MIB = 1024 * 1024
CHUNK = 64 * 1024
SLACK = 64 * 1024  # the heads in body files: the limits count bodies
ORPHAN_BYTES = 8 * MIB  # edge/bounds.py: what a fill nobody reads may still take
# What the socket buffers of two loopback hops (origin to edge, edge to client) may hold
# beyond what the client read: autotuned, several MiB under load (tcp_rmem's maximum is
# far larger). The old code sent the origin's whole 256 MiB.
BUFFERED = 16 * MIB


class EndlessOrigin:
    """A loopback origin answering every request with a 200 whose body never ends
    (`chunked`, or `close`-delimited): it sends until `limit` bytes (the test's bound;
    then it closes without ending the body) or until the edge closes the connection.
    `sent` counts the body bytes it handed to the kernel; `done` is set when it stops.
    `pace`: seconds between chunks (a rate, so that a second client can join the fill)."""

    def __init__(self, framing: str, limit: int = 256 * MIB, pace: float = 0.0) -> None:
        self.framing = framing
        self.limit = limit
        self.pace = pace
        self.sent = 0
        self.done = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        # A small send buffer: what the kernel holds for a reader that stopped is small.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        conn.settimeout(30)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            framing = (
                "Transfer-Encoding: chunked" if self.framing == "chunked" else "Connection: close"
            )
            conn.sendall(
                f"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\n{framing}\r\n\r\n".encode()
            )
            payload = os.urandom(CHUNK)
            if self.framing == "chunked":
                payload = b"%x\r\n%s\r\n" % (CHUNK, payload)
            while self.sent < self.limit:
                conn.sendall(payload)
                self.sent += CHUNK
                if self.pace:
                    time.sleep(self.pace)
        except OSError:
            pass  # the edge closed the connection
        finally:
            self.done.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@contextlib.contextmanager
def endless_origin(framing: str, pace: float = 0.0) -> Iterator[EndlessOrigin]:
    o = EndlessOrigin(framing, pace=pace)
    try:
        yield o
    finally:
        o.close()


class DiskWatch:
    """The largest number of bytes the cache directory's files (bodies and fill files)
    held at any moment, sampled every few milliseconds while it runs."""

    def __init__(self, data_dir: Path) -> None:
        self.cache = data_dir / "cache"
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def now(self) -> int:
        """Bytes of the files there now (a completed fill's file has two names, once).

        The walk is not atomic, so it reads the fill files (`tmp/`, which only grow
        while a fill runs) before the stored objects (`objects/`, which the fill evicts
        as it grows): what it sums is at most what the disk held when it ended, never
        more. The other order summed an object the fill had evicted meanwhile with the
        bytes the fill wrote in its place (CI: a peak of 8.98 MB for 8 MiB)."""
        sizes = {}
        for directory in ("tmp", "objects"):
            for path in (self.cache / directory).rglob("*"):
                with contextlib.suppress(FileNotFoundError):
                    stat = path.stat()
                    if path.is_file():
                        sizes[stat.st_ino] = stat.st_size
        return sum(sizes.values())

    def _watch(self) -> None:
        while not self._stop.wait(0.003):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, self.now())


def read_then_leave(server: Server, host: str, path: str, nbytes: int) -> tuple[int, str]:
    """GET `path`, read `nbytes` of the body, close the connection: (bytes read, X-Cache)."""
    read = 0
    with (
        httpx.Client(base_url=server.edge_url, timeout=30) as client,
        client.stream("GET", path, headers={"Host": host}) as response,
    ):
        assert response.status_code == 200
        for data in response.iter_raw(CHUNK):
            read += len(data)
            if read >= nbytes:
                break
        return read, response.headers["x-cache"]


def not_stored(server: Server) -> dict[str, float]:
    """pullzone_fills_not_stored by reason, from /metrics."""
    metrics = httpx.get(
        f"http://127.0.0.1:{server.api_port}/metrics", headers={"X-API-Key": API_KEY}
    ).text
    counts = {}
    for line in metrics.splitlines():
        if line.startswith("pullzone_fills_not_stored_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            counts[reason] = float(line.rsplit(" ", 1)[1])
    return counts


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Until `check()` holds (an outside process's state, polled), at most `seconds`."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


def assert_a_normal_object_still_caches(server: Server, origin: Origin, path: str) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=600")], body=b"normal"))
    zone = server.create_zone(origin.url, alias=f"normal-{abs(hash(path)) % 10**6}")
    assert server.get(str(zone["fqdn"]), path).headers["x-cache"] == "MISS"
    again = server.get(str(zone["fqdn"]), path)
    assert again.headers["x-cache"] == "HIT" and again.content == b"normal"


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_an_endless_body_past_the_object_size_is_not_stored_and_keeps_streaming(
    tmp_path: Path, origin: Origin, path: str, framing: str
) -> None:
    server = Server(
        tmp_path / "data", "--max-object-size", "4MiB", "--max-cache-size", "16MiB", workers=1
    ).start()
    try:
        with endless_origin(framing) as endless, DiskWatch(tmp_path / "data") as disk:
            zone = server.create_zone(endless.url, alias=f"endless-{framing}")
            host = str(zone["fqdn"])
            read, xcache = read_then_leave(server, host, path, 12 * MIB)
            assert read >= 12 * MIB and xcache == "MISS"  # past the cap, from the origin
            # The client left: the origin's connection, now the client's, closes with it.
            assert endless.done.wait(10)
            assert endless.sent <= read + BUFFERED
        assert disk.peak <= 4 * MIB + SLACK
        assert not list((tmp_path / "data" / "cache").rglob("*.part"))
        assert not [p for p in (tmp_path / "data" / "cache" / "objects").rglob("*") if p.is_file()]
        wait_for(lambda: not_stored(server).get("too_big") == 1)
        assert not_stored(server) == {"too_big": 1}

        # A Content-Length over the cap: relayed whole, never stored.
        big = os.urandom(5 * MIB)
        origin.route(path, Reply(headers=[("Cache-Control", "max-age=600")], body=big))
        zone = server.create_zone(origin.url, alias=f"known-{framing}")
        for _ in range(2):
            answer = server.get(str(zone["fqdn"]), path)
            assert answer.content == big and answer.headers["x-cache"] == "MISS"
        assert origin.count(path) == 2
        assert_a_normal_object_still_caches(server, origin, path + ".small")
        assert server.running
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def test_a_client_that_joined_a_fill_crossing_the_cap_is_cut_and_the_first_is_not(
    tmp_path: Path, path: str
) -> None:
    """The joined client read the fill file; the origin's next bytes go to the client that
    started the fill alone: the joined one's message ends short, which it can tell."""
    server = Server(tmp_path / "data", "--max-object-size", "4MiB", workers=1).start()
    joined: dict[str, object] = {}

    def join(host: str) -> None:
        read = 0
        try:
            with (
                httpx.Client(base_url=server.edge_url, timeout=30) as client,
                client.stream("GET", path, headers={"Host": host}) as response,
            ):
                joined["xcache"] = response.headers["x-cache"]
                for data in response.iter_raw(CHUNK):
                    read += len(data)
        except httpx.HTTPError as exc:
            joined["error"] = exc
        joined["read"] = read

    try:
        with endless_origin("chunked", pace=0.005) as endless:
            host = str(server.create_zone(endless.url, alias="joined")["fqdn"])
            thread = threading.Thread(target=join, args=(host,))
            read = 0
            with (
                httpx.Client(base_url=server.edge_url, timeout=30) as client,
                client.stream("GET", path, headers={"Host": host}) as response,
            ):
                for data in response.iter_raw(CHUNK):
                    read += len(data)
                    if read >= 256 * 1024 and thread.ident is None:
                        thread.start()  # the fill is under way: this one joins it
                    if read >= 8 * MIB:
                        break
            thread.join(30)
        assert read >= 8 * MIB  # the first client, past the cap, from the origin
        assert joined["xcache"] == "MISS"
        assert isinstance(joined.get("error"), httpx.RemoteProtocolError)  # cut, not ended
        assert int(str(joined["read"])) <= 4 * MIB
        assert server.running
    finally:
        server.stop()


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_fill_whose_client_left_is_abandoned_and_its_origin_closed(
    tmp_path: Path, origin: Origin, path: str, framing: str
) -> None:
    server = Server(tmp_path / "data", "--max-cache-size", "64MiB", workers=1).start()
    try:
        with endless_origin(framing) as endless, DiskWatch(tmp_path / "data") as disk:
            zone = server.create_zone(endless.url, alias=f"left-{framing}")
            read, _ = read_then_leave(server, str(zone["fqdn"]), path, 1 * MIB)
            assert endless.done.wait(10)  # not after the test's 256 MiB bound
            # What the fill took after its client left, plus what the kernel buffered.
            assert endless.sent <= read + ORPHAN_BYTES + BUFFERED
        assert disk.peak <= 64 * MIB + SLACK
        wait_for(lambda: not_stored(server).get("abandoned") == 1)
        assert not_stored(server) == {"abandoned": 1}
        assert not list((tmp_path / "data" / "cache").rglob("*.part"))
        assert_a_normal_object_still_caches(server, origin, path + ".small")
    finally:
        server.stop()


def test_a_fill_of_unknown_length_evicts_as_it_writes_and_never_exceeds_the_cache(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    server = Server(tmp_path / "data", "--max-cache-size", "8MiB", workers=1).start()
    try:
        zone = server.create_zone(origin.url, alias="evict-while-filling")
        host = str(zone["fqdn"])
        for i in range(6):  # 6 MiB of older objects
            origin.route(
                f"{path}{i}",
                Reply(headers=[("Cache-Control", "max-age=600")], body=os.urandom(MIB)),
            )
            assert server.get(host, f"{path}{i}").headers["x-cache"] == "MISS"
        body = os.urandom(5 * MIB)
        origin.route(
            path,
            Reply(
                headers=[("Cache-Control", "max-age=600")],
                body=[body[i : i + CHUNK] for i in range(0, len(body), CHUNK)],
                chunked=True,
            ),
        )
        with DiskWatch(tmp_path / "data") as disk:
            assert server.get(host, path).content == body
            wait_for(lambda: disk.now() <= 8 * MIB, 2)  # the janitor's half-second, at most
        assert disk.peak <= 8 * MIB + SLACK
        again = server.get(host, path)
        assert again.headers["x-cache"] == "HIT" and again.content == body
        assert server.get(host, f"{path}5").headers["x-cache"] == "HIT"  # the newest kept
        assert server.get(host, f"{path}0").headers["x-cache"] == "MISS"  # evicted for room
    finally:
        server.stop()
