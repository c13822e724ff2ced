"""Memory while a large object streams through a miss and then a HIT.

Starts a real origin serving SIZE bytes (generated, never held in memory), a real
`pullzone serve`, fetches the object through the edge twice, and samples the RSS of every
pullzone process while it streams. Prints the peak RSS per process.

    .venv/bin/python bench/stream_memory.py --size 2GiB
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from origin import Origin, Reply  # noqa: E402
from server import Server  # noqa: E402

from pullzone.zones.durations import parse_size  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="2GiB")
    size = parse_size(parser.parse_args().size)
    chunk = b"\xab" * (1024 * 1024)

    def body() -> Iterator[bytes]:
        left = size
        while left > 0:
            yield chunk[: min(left, len(chunk))]
            left -= len(chunk)

    origin = Origin()
    origin.route("/big.bin", lambda _seen: Reply(headers=[("Cache-Control", "max-age=600")],
                                                 body=body(), length=size))
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", "--max-cache-size", "8GiB").start()
        assert server.process is not None
        zone = server.create_zone(origin.url, alias="big")
        peaks: dict[int, int] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for pid in tree(server.process.pid):  # type: ignore[union-attr]
                    try:
                        peaks[pid] = max(peaks.get(pid, 0), rss_kib(pid))
                    except FileNotFoundError:
                        pass
                time.sleep(0.05)

        threading.Thread(target=sample, daemon=True).start()
        before = {pid: rss_kib(pid) for pid in tree(server.process.pid)}
        for label in ("MISS", "HIT"):
            start = time.monotonic()
            received = 0
            with httpx.stream("GET", f"{server.edge_url}/big.bin", headers={"Host": zone["fqdn"]},
                              timeout=120) as r:
                cache_status = r.headers["x-cache"]
                for part in r.iter_raw(1024 * 1024):
                    received += len(part)
            took = time.monotonic() - start
            print(f"{label}: X-Cache {cache_status}, {received / 2**30:.2f} GiB in {took:.1f} s "
                  f"({received / took / 2**20:.0f} MiB/s)")
        done.set()
        for pid, peak in sorted(peaks.items()):
            print(f"pid {pid}: RSS before {before.get(pid, 0) / 1024:.0f} MiB, "
                  f"peak {peak / 1024:.0f} MiB")
        server.stop()
    origin.close()


if __name__ == "__main__":
    main()
