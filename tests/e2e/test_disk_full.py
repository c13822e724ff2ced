"""A full disk (issue #7). While filling: the object is served whole but not cached, the
server keeps serving, and caching resumes once space returns. With the whole data disk
full under a running server: HITs go on, no worker dies, and every best-effort write
(LRU times, stats snapshots, access log) is skipped and counted in /metrics. The disk is
a real small tmpfs (the tests run as root, as CI does), filled with a ballast file."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from disk import MIB, fill_up, tmpfs
from origin import Origin, Reply
from server import Server, samples, until


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """DATA_DIR whose cache/ is an 8 MiB tmpfs (the SQLite files stay on the real disk)."""
    with tmpfs(tmp_path / "data" / "cache", "8m"):
        yield tmp_path / "data"


@pytest.fixture()
def data_disk(tmp_path: Path) -> Iterator[Path]:
    """DATA_DIR on a 24 MiB tmpfs of its own: the index, stats and logs fill up with it."""
    with tmpfs(tmp_path / "data", "24m"):
        yield tmp_path / "data"


@pytest.fixture()
def split_disk(tmp_path: Path) -> Iterator[Path]:
    """DATA_DIR on a 16 MiB tmpfs (the index, stats), its cache/ on another 16 MiB one."""
    with tmpfs(tmp_path / "data", "16m") as data, tmpfs(data / "cache", "16m"):
        yield data


def empty_wal(data: Path) -> None:
    """Checkpoint the index's WAL and truncate it to nothing, so that its next write needs
    new pages of the disk (SQLite otherwise reuses the WAL file's own)."""
    with closing(sqlite3.connect(data / "cache.db")) as db:
        assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # not busy


def worker_pids(server: Server) -> set[int]:
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def test_a_full_disk_serves_uncached_and_recovers(small_disk: Path, origin: Origin) -> None:
    body = os.urandom(3 * MIB)
    origin.route("/big.bin", Reply(200, [("Cache-Control", "max-age=600")], body))
    origin.route("/small.txt", Reply(200, [("Cache-Control", "max-age=600")], b"small"))
    server = Server(small_disk, workers=1).start()
    try:
        zone = server.create_zone(origin.url, alias="diskfull")
        host = str(zone["fqdn"])
        assert server.get(host, "/small.txt").headers["x-cache"] == "MISS"

        ballast = small_disk / "cache" / "ballast"
        with open(ballast, "wb") as f:  # leave less than the 3 MiB object needs
            f.write(b"\0" * (6 * MIB))
        before = origin.count("/big.bin")
        for _ in range(2):
            answer = server.get(host, "/big.bin")
            assert answer.status_code == 200 and answer.content == body  # whole
            assert answer.headers["x-cache"] == "MISS"  # and not cached
        assert origin.count("/big.bin") == before + 2
        assert server.get(host, "/small.txt").headers["x-cache"] == "HIT"  # still serving
        assert not list((small_disk / "cache").rglob("*.part"))

        ballast.unlink()  # space returns
        assert server.get(host, "/big.bin").headers["x-cache"] == "MISS"
        again = server.get(host, "/big.bin")
        assert again.headers["x-cache"] == "HIT" and again.content == body
        assert server.running
        assert "not caching /big.bin" in server.output()
    finally:
        server.stop()


def test_a_full_data_disk_keeps_serving_hits(data_disk: Path, origin: Origin) -> None:
    big = os.urandom(4 * MIB)
    origin.route("/full/big.bin", Reply(200, [("Cache-Control", "max-age=600")], big))
    small = {f"/full/s{i}.txt": f"small {i}".encode() for i in range(8)}
    for path, body in small.items():
        origin.route(path, Reply(200, [("Cache-Control", "max-age=600")], body))
    origin.route(
        "/full/new.bin",
        Reply(200, [("Cache-Control", "max-age=600")], [b"x" * 65536] * 8, chunked=True),
    )
    server = Server(data_disk, "--access-log", str(data_disk / "access.log"), workers=2).start()
    try:
        host = str(server.create_zone(origin.url, alias="datadiskfull")["fqdn"])
        for path in [*small, "/full/big.bin"]:
            assert server.get(host, path).headers["x-cache"] == "MISS"
        workers = worker_pids(server)
        assert len(workers) == 2

        empty_wal(data_disk)
        fill_up(data_disk / "ballast")
        # Each worker has met the full disk at its once-a-second snapshot, and lives on.
        out = until(server.output, lambda out: out.count("worker stats write failed") >= 2)
        assert out.count("worker stats write failed") >= 2, out

        def hammer(n: int) -> int:
            """HITs over one keep-alive connection: how many were HITs with their body."""
            hits = 0
            with httpx.Client(base_url=server.edge_url, timeout=10) as client:
                for i in range(n):
                    path = f"/full/s{i % len(small)}.txt"
                    answer = client.get(path, headers={"Host": host})
                    hits += answer.headers.get("x-cache") == "HIT" and answer.content == small[path]
            return hits

        with ThreadPoolExecutor(4) as pool:
            counts = list(pool.map(hammer, [100] * 4))
            download = server.get(host, "/full/big.bin")
        assert counts == [100] * 4
        assert download.headers["x-cache"] == "HIT" and download.content == big  # not cut

        # A fill on the full disk is answered whole, from the origin, and not stored.
        fresh = server.get(host, "/full/new.bin")
        assert fresh.status_code == 200 and fresh.content == b"x" * 65536 * 8
        assert fresh.headers["x-cache"] == "MISS"
        assert not list(data_disk.rglob("*.part"))

        # The HITs' LRU times and log lines met the full disk at the next flush.
        logged = ("worker lru write failed", "worker access_log write failed")
        out = until(server.output, lambda out: all(line in out for line in logged))
        assert all(line in out for line in logged), out
        assert worker_pids(server) == workers
        assert "edge worker" not in server.output() and "Traceback" not in server.output()

        (data_disk / "ballast").unlink()  # space returns: the counts reach /metrics
        expected = {
            'pullzone_write_failures_total{what="stats"}': 2,  # one per worker at least
            'pullzone_write_failures_total{what="access_log"}': 1,
            'pullzone_write_failures_total{what="lru"}': 1,
        }
        failures = until(
            lambda: samples(server),
            lambda m: all(m.get(name, 0) >= n for name, n in expected.items()),
        )
        assert {name: failures.get(name, 0) >= n for name, n in expected.items()} == dict.fromkeys(
            expected, True
        ), failures
        assert server.get(host, "/full/s0.txt").headers["x-cache"] == "HIT"
        assert worker_pids(server) == workers and server.running
    finally:
        server.stop()


def test_a_full_index_disk_serves_the_fill_and_leaves_no_file(
    split_disk: Path, origin: Origin
) -> None:
    """The body has room, the index has none: the fill's row cannot be written. The client
    gets the object whole (MISS), and no body file is left that no row names."""
    body = os.urandom(MIB)
    origin.route("/split/a.bin", Reply(200, [("Cache-Control", "max-age=600")], body))
    origin.route("/split/warm.txt", Reply(200, [("Cache-Control", "max-age=600")], b"warm"))
    chunks = [os.urandom(65536) for _ in range(8)]
    origin.route(
        "/split/c.bin", Reply(200, [("Cache-Control", "max-age=600")], chunks, chunked=True)
    )
    server = Server(split_disk, workers=1).start()
    try:
        host = str(server.create_zone(origin.url, alias="splitdiskfull")["fqdn"])
        assert server.get(host, "/split/warm.txt").headers["x-cache"] == "MISS"
        empty_wal(split_disk)
        fill_up(split_disk / "ballast")
        for _ in range(2):  # on one keep-alive connection: each answer is whole
            answer = server.get(host, "/split/a.bin")
            assert answer.status_code == 200 and answer.content == body
            assert answer.headers["x-cache"] == "MISS"
            chunked = server.get(host, "/split/c.bin")
            assert chunked.status_code == 200 and chunked.content == b"".join(chunks)
            assert chunked.headers["x-cache"] == "MISS"
        assert origin.count("/split/a.bin") == origin.count("/split/c.bin") == 2  # not stored
        files = [p for p in (split_disk / "cache").rglob("*") if p.is_file()]
        assert len(files) == 1, files  # warm.txt's body only: no orphan, no .part
        assert server.get(host, "/split/warm.txt").headers["x-cache"] == "HIT"
        assert server.running
    finally:
        server.stop()
