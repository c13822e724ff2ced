"""A worker killed in the middle of a fill: the clients of other workers reading that fill
get the rest of the object from the origin (a Range request on the same representation),
not a cut connection."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from origin import Origin, Reply, Seen
from server import Server

MIB = 1024 * 1024
FOLLOWERS = 10


def _flock_holder(part: Path) -> int | None:
    """The pid holding a flock on `part` (the fill's leader), from /proc/locks."""
    inode = os.stat(part).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            return int(fields[4])
    return None


def test_the_readers_of_a_fill_whose_worker_died_get_the_rest_from_the_origin(
    tmp_path: Path, origin: Origin
) -> None:
    body = bytes(range(256)) * (8 * MIB // 256)  # 8 MiB: 1 MiB, then held until released
    release = threading.Event()
    path = "/takeover/video.bin"

    def script(seen: Seen) -> Reply:
        headers = [("Cache-Control", "max-age=600"), ("ETag", '"v1"')]
        wanted = seen.headers.get("range")
        if wanted is not None and seen.headers.get("if-range") == '"v1"':
            first = int(wanted.removeprefix("bytes=").rstrip("-"))
            headers.append(("Content-Range", f"bytes {first}-{len(body) - 1}/{len(body)}"))
            return Reply(206, headers, body[first:])

        def slowly() -> Iterator[bytes]:
            yield body[:MIB]
            release.wait(30)
            yield body[MIB:]

        return Reply(200, headers, slowly(), length=len(body))

    origin.route(path, script)
    server = Server(tmp_path / "data", workers=2).start()
    try:
        zone = server.create_zone(origin.url, alias="takeover")
        url, host = server.edge_url + path, {"Host": str(zone["fqdn"])}

        headed = threading.Semaphore(0)  # released once per client that has its head

        def fetch(_: int) -> bytes | None:
            try:
                with httpx.stream("GET", url, headers=host, timeout=30) as response:
                    headed.release()
                    return response.read()
            except httpx.HTTPError:
                return None  # a client of the killed worker: its connection died with it

        with ThreadPoolExecutor(FOLLOWERS + 1) as pool:
            leader = pool.submit(fetch, 0)
            assert headed.acquire(timeout=10)  # the fill has begun: its head is out
            [part] = (tmp_path / "data" / "cache" / "tmp").glob("*.part")
            holder = _flock_holder(part)
            assert holder is not None
            followers = [pool.submit(fetch, i) for i in range(1, FOLLOWERS + 1)]
            for _ in range(FOLLOWERS):  # every follower reads the fill
                assert headed.acquire(timeout=10)
            os.kill(holder, signal.SIGKILL)
            release.set()
            results = [f.result() for f in [leader, *followers]]
        completed = [r for r in results if r is not None]
        assert completed, "every reader was cut"
        assert all(r == body for r in completed), [len(r) for r in completed]
        resumed = [s for s in origin.seen[path] if "range" in s.headers]
        assert resumed and all(s.headers["if-range"] == '"v1"' for s in resumed)
    finally:
        server.stop()
