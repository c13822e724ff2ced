"""Origin failures, request collapsing, streaming, eviction and crashes, end to end."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from origin import Origin, Reply
from ports import free_port
from server import Server, children, samples, until

Zone = dict[str, Any]


def test_origin_refusing_connections_is_502(server: Server, path: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    zone = server.create_zone(dead, alias="refused")
    r = server.get(zone["fqdn"], path)
    assert r.status_code == 502


@contextlib.contextmanager
def raw_origin(answer: bytes) -> Iterator[str]:
    """A loopback origin that reads a request head and answers `answer`, whatever it is."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\nbody",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 9999 Odd\r\n\r\n",
        b"",
    ],
    ids=["not-http", "bad-length", "two-lengths", "bad-chunk", "bad-status", "nothing"],
)
def test_an_origin_answering_garbage_is_a_502_and_nothing_is_cached(
    server: Server, path: str, answer: bytes
) -> None:
    with raw_origin(answer) as url:
        zone = server.create_zone(url, alias=f"garbage-{abs(hash(answer)) % 10**8}")
        for _ in range(2):  # never cached: the second answer is no HIT either
            try:
                r = server.get(zone["fqdn"], path)
            except httpx.RemoteProtocolError:
                continue  # the head was relayed, then the body broke: the connection is cut
            assert r.status_code == 502, (r.status_code, r.content)
            assert r.headers["x-cache"] != "HIT"
    healthy = server.api.get("/zones/http/pull")
    assert healthy.status_code == 200  # and the server is fine


def test_origin_too_slow_is_504(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    origin.route(path, Reply(body=b"late", delay=3.0))  # the server's origin timeout is 2 s
    r = server.get(zone["fqdn"], path)
    assert r.status_code == 504


def test_usestale_serves_the_stale_copy_when_the_origin_fails(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=1")], body=b"old"))
    server.get(zone["fqdn"], path)
    origin.route(path, Reply(status=200, body=b"late", delay=3.0))
    time.sleep(1.1)  # let the stored copy expire
    r = server.get(zone["fqdn"], path)
    assert (r.status_code, r.headers["x-cache"], r.content) == (200, "STALE", b"old")


@pytest.mark.zone(cache={"usestale": "N"})
def test_without_usestale_an_origin_failure_is_an_error(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=1")], body=b"old"))
    server.get(zone["fqdn"], path)
    origin.route(path, Reply(body=b"late", delay=3.0))
    time.sleep(1.1)
    assert server.get(zone["fqdn"], path).status_code == 504


def test_a_body_cut_off_by_the_origin_is_never_cached(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    body = b"x" * 100_000
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", "max-age=60")],
            body=[body],
            length=len(body),
            cut_after=50_000,
        ),
    )
    with pytest.raises(httpx.HTTPError):
        server.get(zone["fqdn"], path)
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=body))
    r = server.get(zone["fqdn"], path)
    assert (r.headers["x-cache"], len(r.content)) == ("MISS", len(body))
    assert origin.count(path) == 2


def test_a_small_body_cut_off_by_the_origin_is_a_502_not_an_answer_that_breaks_off(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """A small body is read whole before anything is answered (edge/fills.py, WHOLE):
    cut off, it is an origin failure the client is told of, not a 200 cut short."""
    body = b"x" * 20_000
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", "max-age=60")],
            body=[body],
            length=len(body),
            cut_after=10_000,
        ),
    )
    r = server.get(zone["fqdn"], path)
    assert (r.status_code, r.headers["x-cache"]) == (502, "MISS")
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=body))
    r = server.get(zone["fqdn"], path)
    assert (r.status_code, r.headers["x-cache"], r.content) == (200, "MISS", body)
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    assert origin.count(path) == 2


@pytest.mark.parametrize("size", [1_000, 300_000], ids=["small", "large"])
def test_a_client_that_leaves_before_the_origin_answers_leaves_no_fill_behind(
    server: Server, origin: Origin, zone: Zone, path: str, size: int
) -> None:
    """The fill a client led ends when that client goes away before the origin's head:
    the next request is answered (not left following a fill nobody leads)."""
    answered = threading.Event()
    origin.route(
        path,
        lambda seen: Reply(
            headers=[("Cache-Control", "max-age=60")], body=b"a" * size, hold=answered
        ),
    )
    host, port = server.edge_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as leaving:
        leaving.sendall(f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n".encode())
        assert until(lambda: origin.count(path), lambda n: n == 1) == 1  # asking the origin
    aborted = f'pullzone_requests_total{{cache_status="ABORTED",zone="{zone["id"]}"}}'
    assert until(lambda: samples(server).get(aborted), lambda n: n == 1) == 1  # it left
    answered.set()
    r = server.get(zone["fqdn"], path, timeout=10)
    assert (r.status_code, len(r.content)) == (200, size)


def test_concurrent_misses_make_one_origin_request(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    body = os.urandom(300_000)
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=body, delay=0.5))

    def fetch(_: int) -> bytes:
        return httpx.get(server.edge_url + path, headers={"Host": zone["fqdn"]}, timeout=30).content

    with ThreadPoolExecutor(50) as pool:
        bodies = list(pool.map(fetch, range(50)))
    assert all(b == body for b in bodies)
    assert origin.count(path) == 1


def test_a_client_reads_the_miss_while_the_origin_still_sends_it(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b"first-part;"
        release.wait(10)
        yield b"second-part"

    origin.route(
        path, Reply(headers=[("Cache-Control", "max-age=60")], body=slow_body(), chunked=True)
    )
    with httpx.stream("GET", server.edge_url + path, headers={"Host": zone["fqdn"]}) as r:
        chunks = r.iter_raw()
        assert next(chunks).startswith(b"first-part;")  # before the origin has finished
        release.set()
        rest = b"".join(chunks)
    assert rest.endswith(b"second-part")
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"


def test_zone_update_is_seen_by_every_worker_at_once(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    other = Origin()
    try:
        origin.route(path, Reply(body=b"old-origin", headers=[("Cache-Control", "no-store")]))
        other.route(path, Reply(body=b"new-origin", headers=[("Cache-Control", "no-store")]))
        assert server.get(zone["fqdn"], path).content == b"old-origin"
        r = server.api.post(f"/zones/http/pull/{zone['id']}", json={"origin": other.url})
        assert r.status_code == 200, r.text
        for _ in range(20):  # fresh connections spread over both workers
            assert (
                httpx.get(server.edge_url + path, headers={"Host": zone["fqdn"]}).content
                == b"new-origin"
            )
    finally:
        other.close()


def stored_bytes(tmp_path: Path) -> int:
    """Bytes of the body files a server with data dir `tmp_path / "data"` keeps."""
    objects = (tmp_path / "data" / "cache" / "objects").rglob("*")
    return sum(f.stat().st_size for f in objects if f.is_file())  # not the shard directories


def test_cache_size_limit_evicts_the_oldest_of_objects_alike(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    s = Server(tmp_path / "data", "--max-cache-size", "1MiB").start()
    try:
        zone = s.create_zone(origin.url, alias="small")
        body = b"y" * 200_000
        for i in range(12):
            origin.route(f"{path}{i}", Reply(headers=[("Cache-Control", "max-age=600")], body=body))
            s.get(zone["fqdn"], f"{path}{i}")
        deadline = time.monotonic() + 10
        while stored_bytes(tmp_path) > 1024 * 1024 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stored_bytes(tmp_path) <= 1024 * 1024
        assert s.get(zone["fqdn"], f"{path}11").headers["x-cache"] == "HIT"  # newest kept
        assert s.get(zone["fqdn"], f"{path}0").headers["x-cache"] == "MISS"  # oldest evicted
    finally:
        s.stop()


def test_an_object_served_again_outlives_older_ones_under_eviction(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    """Not FIFO: object 0, stored first but served again, survives the fills that evict
    the objects stored after it (its access, recorded, raised its eviction priority)."""
    s = Server(tmp_path / "data", "--max-cache-size", "1MiB", "--workers", "1").start()
    try:
        zone = s.create_zone(origin.url, alias="lru")
        body = b"y" * 200_000
        for i in range(12):
            origin.route(f"{path}{i}", Reply(headers=[("Cache-Control", "max-age=600")], body=body))
        for i in range(4):
            s.get(zone["fqdn"], f"{path}{i}")
        cache_db = sqlite3.connect(tmp_path / "data" / "cache.db")

        def last_access(i: int) -> float:
            row = cache_db.execute(
                "SELECT last_access FROM objects WHERE path = ?", (f"{path}{i}",)
            ).fetchone()
            return float(row[0])

        stored_at = last_access(0)
        assert s.get(zone["fqdn"], f"{path}0").headers["x-cache"] == "HIT"
        deadline = time.monotonic() + 10  # the worker records accesses once a second
        while last_access(0) == stored_at and time.monotonic() < deadline:
            time.sleep(0.05)
        assert last_access(0) > last_access(3)
        for i in range(4, 12):
            s.get(zone["fqdn"], f"{path}{i}")
        deadline = time.monotonic() + 10
        while stored_bytes(tmp_path) > 1024 * 1024 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.get(zone["fqdn"], f"{path}0").headers["x-cache"] == "HIT"
        assert s.get(zone["fqdn"], f"{path}1").headers["x-cache"] == "MISS"
        cache_db.close()
    finally:
        s.stop()


def test_an_evicted_object_a_worker_still_remembers_is_fetched_again_not_cut_off(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    """A worker keeps a large object's entry in memory without its body (read from its
    file per request). Once eviction removed the file, the next request is a MISS
    answered whole, not a HIT whose body is cut off after its head."""
    s = Server(tmp_path / "data", "--max-cache-size", "1MiB", "--workers", "1").start()
    try:
        zone = s.create_zone(origin.url, alias="gone")
        body = b"z" * 300_000  # over the 256 KiB a worker keeps in memory
        for i in range(6):
            origin.route(f"{path}{i}", Reply(headers=[("Cache-Control", "max-age=600")], body=body))
        assert s.get(zone["fqdn"], f"{path}0").headers["x-cache"] == "MISS"
        assert s.get(zone["fqdn"], f"{path}0").headers["x-cache"] == "HIT"
        for i in range(1, 6):
            s.get(zone["fqdn"], f"{path}{i}")
        cache_db = sqlite3.connect(tmp_path / "data" / "cache.db")
        evicted = cache_db.execute(
            "SELECT COUNT(*) FROM objects WHERE path = ?", (f"{path}0",)
        ).fetchone()
        cache_db.close()
        assert evicted == (0,)
        r = s.get(zone["fqdn"], f"{path}0")
        assert r.status_code == 200 and r.content == body
        assert r.headers["x-cache"] == "MISS"
        assert origin.count(f"{path}0") == 2
    finally:
        s.stop()


def test_kill_9_during_a_fill_leaves_no_partial_object(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    s = Server(tmp_path / "data").start()
    started = threading.Event()
    body = b"z" * 1_000_000

    def half_then_hang() -> Iterator[bytes]:
        yield body[:300_000]
        started.set()
        time.sleep(30)
        yield body[300_000:]

    origin.route(
        path,
        Reply(headers=[("Cache-Control", "max-age=600")], body=half_then_hang(), length=len(body)),
    )
    zone = s.create_zone(origin.url, alias="crash")
    sock = socket.create_connection(("127.0.0.1", s.edge_port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n".encode())
    assert started.wait(10)
    time.sleep(0.2)  # the edge has written part of the body to its fill file
    assert s.process is not None
    _kill_tree(s.process.pid)
    s.process.wait()
    sock.close()

    origin.route(path, Reply(headers=[("Cache-Control", "max-age=600")], body=body))
    s2 = Server(tmp_path / "data").start()
    try:
        r = s2.get(zone["fqdn"], path)
        assert (r.headers["x-cache"], r.content) == ("MISS", body)
        # The killed fill's part file is gone; the new fill's goes once it is stored,
        # which may come just after its client has the last byte.
        tmp = tmp_path / "data" / "cache" / "tmp"
        left = until(lambda: list(tmp.iterdir()), lambda parts: not parts, timeout=5)
        assert not left
    finally:
        s2.stop()


def _kill_tree(pid: int) -> None:
    """kill -9 the server and its worker processes."""
    for child in [pid, *children(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_killed_worker_is_replaced_and_the_cache_survives(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    s = Server(tmp_path / "data").start()
    try:
        origin.route(path, Reply(headers=[("Cache-Control", "max-age=600")], body=b"kept"))
        zone = s.create_zone(origin.url, alias="replace")
        s.get(zone["fqdn"], path)
        workers = s.worker_pids()
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if len(set(s.worker_pids()) - set(workers)) == 1:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the killed worker was not replaced")
        for _ in range(10):
            r = httpx.get(s.edge_url + path, headers={"Host": zone["fqdn"]})
            assert (r.headers["x-cache"], r.content) == ("HIT", b"kept")
        assert origin.count(path) == 1
    finally:
        s.stop()


def test_usestale_serves_the_stale_copy_when_the_origin_answers_5xx(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=1")], body=b"old"))
    server.get(zone["fqdn"], path)
    origin.route(path, Reply(status=503, body=b"down for maintenance"))
    time.sleep(1.1)  # let the stored copy expire
    r = server.get(zone["fqdn"], path)
    assert (r.status_code, r.headers["x-cache"], r.content) == (200, "STALE", b"old")


def test_a_5xx_without_a_stale_copy_is_relayed(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(status=503, body=b"down for maintenance"))
    r = server.get(zone["fqdn"], path)
    assert (r.status_code, r.content) == (503, b"down for maintenance")
