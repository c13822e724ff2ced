#!/usr/bin/env python3
"""Instructions per MISS, in-process: deterministic where timings on a shared machine are
not (bench/README.md, "Misses (S8 cold)").

As `hit_instructions.py` does for HITs: for each checkout given (`--src`), a real
`pullzone serve` creates a zone in a data directory; then, with the server stopped, a
worker's edge is built on it exactly as `edge/worker.py` builds it, and `--connections`
connections with stand-in transports each ask for their share of `--requests` distinct
10 KiB objects, one after the other, from a real origin on loopback (a threaded Python
server in this process, not counted). Every request is a miss: it is fetched, stored
(the fill file, the index row) and answered. Callgrind counts the instructions of two
runs, of `--requests` misses and of one per connection; their difference over the
difference in requests is what one miss costs in the worker. System calls count as the
instructions they run in the process, not in the kernel.

    git worktree add --detach /tmp/pz-a <commit>
    .venv/bin/python bench/miss_instructions.py --src /tmp/pz-a/src --src src
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

BODY = os.urandom(10 * 1024)

# Run in a child with PYTHONPATH=<src>: the worker's edge on DATA_DIR, N misses over C
# connections (each its own stand-in transport), object paths under PREFIX.
CHILD = r"""
import asyncio, sys
from pathlib import Path
from pullzone.config import Settings
from pullzone.edge import http
from pullzone.edge.lifecycle import Edge
from pullzone.edge.bounds import Limits
from pullzone.edge.origin import Origin
from pullzone.edge.state import EdgeState
from pullzone.edge.stats import WorkerStats
from pullzone.bus.signal import SeqSignal
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex
from pullzone.sqlite import connect

data_dir, host, count, connections, prefix = (
    Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
)
BODY = 10 * 1024


class Transport:
    def __init__(self):
        self.written = 0
        self.grew = asyncio.Event()
    def write(self, data):
        self.written += len(data)
        self.grew.set()
    def writelines(self, parts):
        for part in parts:
            self.write(part)
    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 40000) if name == "peername" else default
    def is_closing(self): return False
    def pause_reading(self): pass
    def resume_reading(self): pass
    def close(self): pass
    def can_write_eof(self): return False
    def set_write_buffer_limits(self, *a, **k): pass
    def get_write_buffer_size(self): return 0


async def client(edge, c, n):
    transport = Transport()
    conn = http.Connection(edge.handle, edge.finished)
    conn.connection_made(transport)
    for i in range(n):
        wanted = transport.written + BODY + 100  # the body and at least a head
        conn.data_received(
            f"GET {prefix}/{c}/{i}.bin HTTP/1.1\r\nHost: {host}\r\nUser-Agent: wrk\r\n\r\n".encode()
        )
        while transport.written < wanted:
            transport.grew.clear()
            await transport.grew.wait()


async def main():
    settings = Settings(data_dir=data_dir, edge_domain="localhost")
    index = CacheIndex(connect(settings.cache_db))
    signal = SeqSignal(settings.seq_path)
    state = EdgeState(connect(settings.control_db), index, signal, "localhost")
    stats = WorkerStats(settings.stats_dir)
    origin = Origin(5.0, 5.0, stats, cdn_id="localhost")
    edge = Edge(state, index, BodyStore(settings.cache_dir), origin, stats, Limits(2**30, 2**33))
    share = count // connections
    await asyncio.gather(*(client(edge, c, share) for c in range(connections)))
    stored = index.count()
    await edge.filler.close()
    await origin.close()
    assert stored >= count, f"{stored} objects stored of {count}"

asyncio.run(main())
"""


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Cache-Control", "max-age=86400")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


def instructions(src: Path, data_dir: Path, host: str, count: int, conns: int, prefix: str) -> int:
    """Instructions the child executes (pzbench/callgrind.py)."""
    return callgrind.instructions(
        [sys.executable, "-c", CHILD, str(data_dir), host, str(count), str(conns), prefix], src
    )


def per_miss(src: Path, requests: int, conns: int, repeats: int) -> float:
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    origin.daemon_threads = True
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="pullzone-misses-") as tmp:
            os.environ["PYTHONPATH"] = str(src)
            server = Pullzone(Path(tmp), workers=1).start()
            try:
                zone = server.create_zone("miss", f"http://127.0.0.1:{origin.server_port}")
            finally:
                server.stop()
                os.environ.pop("PYTHONPATH", None)
            data_dir, host = Path(tmp) / "data", zone["fqdn"]
            runs = []
            for r in range(repeats):
                many = instructions(src, data_dir, host, requests, conns, f"/m{r}")
                few = instructions(src, data_dir, host, conns, conns, f"/f{r}")
                runs.append((many - few) / (requests - conns))
    finally:
        origin.shutdown()
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, action="append", required=True)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for src in args.src:
        n = per_miss(src.resolve(), args.requests, args.connections, args.repeats)
        print(f"{src}: {n:,.0f} instructions per MISS", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
