#!/usr/bin/env python3
"""A paired A/B of the HIT path: two pullzone servers side by side, one running another
checkout's code (`--a-src`, e.g. a `git worktree` of the last release's commit), `wrk`
alternating between them round after round, so the machine's drift hits both alike.

    git worktree add --detach /tmp/pz-a <commit>
    .venv/bin/python bench/ab.py --a-src /tmp/pz-a/src --rounds 8 --duration 10

S1: 1 KiB HIT (wrk -t2 -c64); S2: 50 MiB HIT (wrk -t2 -c8). Prints each round and the
median B/A ratio per scenario; writes bench/results/ab.json.
"""

from __future__ import annotations

import argparse
import datetime
import atexit
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pzbench import procs
from pzbench.load import warm, wrk
from pzbench.procs import Pullzone

BENCH = Path(__file__).resolve().parent
HOST = "ab.localhost"
BODIES = {"/1k.bin": b"x" * 1024, "/50m.bin": b"y" * (50 * 1024 * 1024)}
SCENARIOS = {"S1": ("/1k.bin", 64), "S2": ("/50m.bin", 8)}


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = BODIES.get(self.path, b"")
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=86400")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a-src", type=Path, required=True, help="the A side's src/ folder")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "ab.json")
    args = parser.parse_args()
    atexit.register(procs.stop_all)
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    origin.daemon_threads = True
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="pullzone-ab-"))
    servers: dict[str, Pullzone] = {}
    for side in ("A", "B"):
        if side == "A":
            os.environ["PYTHONPATH"] = str(args.a_src.resolve())  # the A side's code
        else:
            os.environ.pop("PYTHONPATH", None)
        servers[side] = Pullzone(work / side, args.workers).start()
        servers[side].create_zone("ab", f"http://127.0.0.1:{origin.server_port}")
    os.environ.pop("PYTHONPATH", None)
    results: dict[str, dict[str, list[float]]] = {s: {"A": [], "B": []} for s in SCENARIOS}
    try:
        for path, _ in SCENARIOS.values():
            for pz in servers.values():
                warm(f"http://127.0.0.1:{pz.port}", HOST, path)
        for r in range(args.rounds):
            for name, (path, connections) in SCENARIOS.items():
                order = ("A", "B") if r % 2 == 0 else ("B", "A")
                for side in order:
                    pz = servers[side]
                    res = wrk(
                        f"http://127.0.0.1:{pz.port}{path}", HOST, threads=2,
                        connections=connections, duration=args.duration,
                    )  # fmt: skip
                    value = res.rps if name == "S1" else res.bytes_per_s / 1e9
                    results[name][side].append(value)
                    print(f"round {r + 1} {name} {side}: {value:,.2f} errors {res.error_count}")
    finally:
        procs.stop_all()
        origin.shutdown()
    summary = {}
    for name, sides in results.items():
        ratios = [b / a for a, b in zip(sides["A"], sides["B"], strict=True) if a]
        summary[name] = {
            "unit": "req/s" if name == "S1" else "GB/s",
            "A_median": statistics.median(sides["A"]),
            "B_median": statistics.median(sides["B"]),
            "B_over_A_median": round(statistics.median(ratios), 3),
            "rounds": sides,
        }
        print(f"{name}: B/A median {summary[name]['B_over_A_median']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "a_src": str(args.a_src),
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                **summary,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
