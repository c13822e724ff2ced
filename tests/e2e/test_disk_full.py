"""A full disk (issue #7). While filling: the object is served whole but not cached, the
server keeps serving, and caching resumes once space returns. With the whole data disk
full under a running server: HITs go on, no worker dies, and every best-effort write
(LRU times, stats snapshots, access log) is skipped and counted in /metrics. The disk is
a real small tmpfs (the tests run as root, as CI does), filled with a ballast file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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

        out = until(server.output, lambda out: "worker access_log write failed" in out)
        assert "worker access_log write failed" in out, out
        assert worker_pids(server) == workers
        assert "edge worker" not in server.output() and "Traceback" not in server.output()

        (data_disk / "ballast").unlink()  # space returns: the counts reach /metrics
        failures = until(
            lambda: samples(server),
            lambda m: (
                m.get('pullzone_write_failures_total{what="stats"}', 0) >= 2
                and m.get('pullzone_write_failures_total{what="access_log"}', 0) >= 1
            ),
        )
        assert failures['pullzone_write_failures_total{what="stats"}'] >= 2
        assert failures['pullzone_write_failures_total{what="access_log"}'] >= 1
        assert server.get(host, "/full/s0.txt").headers["x-cache"] == "HIT"
        assert worker_pids(server) == workers and server.running
    finally:
        server.stop()
