#!/usr/bin/env python3
"""Instructions per HIT, in-process: deterministic where timings on a shared machine are not.

For each checkout given (`--src`, e.g. a `git worktree` of an older commit and this one),
a real `pullzone serve` stores a 1 KiB object in a data directory; then, with the server
stopped, a worker's edge is built on that data directory exactly as `edge/worker.py`
builds it, and a connection with a stand-in transport is fed the same keep-alive GET
again and again. Callgrind counts the instructions of two runs, of `--requests` and of
none; their difference over `--requests` is what one HIT costs, the interpreter's start
and the setup cancelling out.

    git worktree add --detach /tmp/pz-a <commit>
    .venv/bin/python bench/hit_instructions.py --src /tmp/pz-a/src --src src
"""

from __future__ import annotations

import argparse
import http.server
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pzbench import callgrind
from pzbench.procs import Pullzone

HOST = "hit.localhost"
BODY = b"x" * 1024

# Run in a child with PYTHONPATH=<src>: the worker's edge on DATA_DIR, fed N requests.
CHILD = r"""
import asyncio, sys
from pathlib import Path
from pullzone.config import Settings
from pullzone.edge import worker, http
from pullzone.edge.lifecycle import Edge
from pullzone.edge.bounds import Limits
from pullzone.edge.origin import Origin
from pullzone.edge.state import EdgeState
from pullzone.edge.stats import WorkerStats
from pullzone.bus.signal import SeqSignal
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex
from pullzone.sqlite import connect

data_dir, host, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])


class Transport:
    written = 0
    def write(self, data): Transport.written += len(data)
    def get_extra_info(self, name, default=None): return ("127.0.0.1", 40000) if name == "peername" else default
    def is_closing(self): return False
    def pause_reading(self): pass
    def resume_reading(self): pass
    def close(self): pass
    def can_write_eof(self): return False
    def set_write_buffer_limits(self, *a, **k): pass
    def get_write_buffer_size(self): return 0


async def main():
    settings = Settings(data_dir=data_dir, edge_domain="localhost")
    index = CacheIndex(connect(settings.cache_db))
    state = EdgeState(connect(settings.control_db), index, SeqSignal(settings.seq_path), "localhost")
    stats = WorkerStats(settings.stats_dir)
    origin = Origin(1.0, 1.0, stats, cdn_id="localhost")
    edge = Edge(state, index, BodyStore(settings.cache_dir), origin, stats, Limits(2**30, 2**33))
    conn = http.Connection(edge.handle, edge.finished)
    conn.connection_made(Transport())
    request = f"GET /1k.bin HTTP/1.1\r\nHost: {host}\r\nUser-Agent: wrk\r\n\r\n".encode()
    conn.data_received(request)  # the first one loads the entry into the worker's memory
    for _ in range(count):
        conn.data_received(request)
    assert Transport.written > 1024 * (count + 1), "the HIT was not served"

asyncio.run(main())
"""


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cache_control = "max-age=86400"  # --cache-control

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Cache-Control", self.cache_control)
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


def instructions(src: Path, data_dir: Path, host: str, count: int) -> int:
    """Instructions the child executes (pzbench/callgrind.py)."""
    return callgrind.instructions(
        [sys.executable, "-c", CHILD, str(data_dir), host, str(count)], src
    )


def per_hit(src: Path, requests: int, repeats: int) -> float:
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="pullzone-hits-") as tmp:
        os.environ["PYTHONPATH"] = str(src)
        server = Pullzone(Path(tmp), workers=1).start()
        try:
            zone = server.create_zone("hit", f"http://127.0.0.1:{origin.server_port}")
            import httpx

            for _ in range(2):
                httpx.get(f"http://127.0.0.1:{server.port}/1k.bin", headers={"Host": zone["fqdn"]})
        finally:
            server.stop()
            os.environ.pop("PYTHONPATH", None)
            origin.shutdown()
        data_dir = Path(tmp) / "data"
        runs = [
            (
                instructions(src, data_dir, zone["fqdn"], requests)
                - instructions(src, data_dir, zone["fqdn"], 0)
            )
            / requests
            for _ in range(repeats)
        ]
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, action="append", required=True)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--cache-control", default=_Origin.cache_control, help="the origin's, for the object"
    )
    args = parser.parse_args()
    _Origin.cache_control = args.cache_control
    for src in args.src:
        print(
            f"{src}: {per_hit(src.resolve(), args.requests, args.repeats):,.0f} instructions per HIT"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
