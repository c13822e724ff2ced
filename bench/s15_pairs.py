#!/usr/bin/env python3
"""S15 on pullzone alone, A against B in alternating rounds: Zipf(1.0) over 200,000 objects
of 1-100 KiB, a cache of 30 % of their bytes, wrk -t2 -c64 for `--duration` s per run, a
new server and an empty cache each run (as bench/run.py's S15, without nginx and Varnish),
the A side running another checkout's code (`--a-src`, e.g. a `git worktree`).

    git worktree add --detach /tmp/pz-a <commit>
    .venv/bin/python bench/s15_pairs.py --a-src /tmp/pz-a/src --rounds 2 --duration 60

With `--by-status`, the server writes a JSON access log and the run reports each cache
status's server-side latency (from the request's head to its answer's last byte) over the
second half of the run, when the cache is full and evicting: where the tail comes from.
Writes bench/results/s15-pairs.json.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pzbench import procs, workload
from pzbench.load import warm, wrk
from pzbench.procs import Origin, Pullzone

BENCH = Path(__file__).resolve().parent
HOST = "bench.localhost"
OBJECTS = 200_000
FRACTION = 0.3


def by_status(log: Path, skip: float) -> dict[str, dict[str, float]]:
    """Latency percentiles (ms) per X-Cache status, past the first `skip` seconds."""
    durations: dict[str, list[float]] = {}
    start = None
    with open(log) as lines:
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            start = entry["time"] if start is None else start
            if entry["time"] - start >= skip:
                durations.setdefault(entry["cache"], []).append(entry["duration_ms"])
    out = {}
    for status, values in durations.items():
        values.sort()
        n = len(values)
        out[status] = {
            "n": n,
            **{f"p{q}": values[min(n - 1, n * q // 100)] for q in (50, 90, 99)},
            "max": values[-1],
        }
    return out


def one_run(work: Path, origin: Origin, kib: list[int], args: argparse.Namespace) -> dict[str, Any]:
    budget_kib = int(sum(kib) * FRACTION)
    log = work / "access.log"
    log.unlink(missing_ok=True)  # each run its own
    extra = ("--access-log", str(log), "--access-log-format", "json") if args.by_status else ()
    pz = Pullzone(work / "pz", args.workers, max_cache_size=f"{budget_kib}KiB", extra=extra)
    pz.start()
    try:
        pz.create_zone("bench", origin.base)
        warm(pz.base, HOST, "/1k.bin")
        pathfile = work / "s15.txt"
        workload.write_paths(pathfile, "/u/s15/", kib)
        res = wrk(
            pz.base + "/1k.bin", HOST, threads=2, connections=64, duration=args.duration,
            mode="zipf", pathfile=pathfile, seed=15,
        )  # fmt: skip
    finally:
        pz.stop()
    result: dict[str, Any] = {"rps": res.rps, "hit_ratio": res.hit_ratio, **res.as_dict()}
    if args.by_status:
        result["by_status_ms"] = by_status(log, args.duration / 2)
    shutil.rmtree(work / "pz", ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a-src", type=Path, required=True, help="the A side's src/ folder")
    parser.add_argument("--b-src", type=Path, default=BENCH.parent / "src")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--by-status", action="store_true", help="latency per X-Cache status")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "s15-pairs.json")
    args = parser.parse_args()
    procs.ensure_tools(False, ("wrk", "nginx"))
    atexit.register(procs.stop_all)
    work = Path(tempfile.mkdtemp(prefix="pullzone-s15-"))
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    try:
        root = work / "origin-files"
        root.mkdir()
        (root / "1k.bin").write_bytes(os.urandom(1024))
        workload.write_origin_files(root)
        origin = Origin(work / "origin", root, slow_rate="1m", expires="24h").start()
        kib = workload.sizes(OBJECTS)
        for r in range(args.rounds):
            for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                os.environ["PYTHONPATH"] = str(
                    (args.a_src if side == "A" else args.b_src).resolve()
                )
                result = one_run(work, origin, kib, args)
                runs[side].append(result)
                lat = result["latency_us"]
                print(
                    f"round {r + 1} {side}: {result['rps']:,.0f} req/s, HIT "
                    f"{100 * (result['hit_ratio'] or 0):.1f} %, p50 {lat['p50'] / 1000:.2f} ms, "
                    f"p99 {lat['p99'] / 1000:.1f} ms, max {lat['max'] / 1000:.1f} ms"
                    + (f", by status {result['by_status_ms']}" if args.by_status else ""),
                    flush=True,
                )
    finally:
        os.environ.pop("PYTHONPATH", None)
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        side: {
            "rps_median": statistics.median(r["rps"] for r in results),
            "p99_ms_median": statistics.median(r["latency_us"]["p99"] / 1000 for r in results),
        }
        for side, results in runs.items()
    }
    print(json.dumps(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "a_src": str(args.a_src),
                "b_src": str(args.b_src),
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "config": {"rounds": args.rounds, "duration_s": args.duration},
                "summary": summary,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
