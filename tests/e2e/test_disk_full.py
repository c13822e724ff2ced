"""A full disk while filling (issue #7): the object is served whole but not cached, the
server keeps serving, and caching resumes once space returns. The cache directory is a
real 8 MiB tmpfs (the tests run as root, as CI does), filled with a ballast file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from origin import Origin, Reply
from server import Server

MIB = 1024 * 1024


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """DATA_DIR whose cache/ is an 8 MiB tmpfs (the SQLite files stay on the real disk)."""
    data = tmp_path / "data"
    cache = data / "cache"
    cache.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(cache)], check=True)
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)


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
