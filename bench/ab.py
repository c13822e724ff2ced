#!/usr/bin/env python3
"""A paired A/B of pullzone: two servers side by side, A running another checkout's code
(`--a-src`, e.g. a `git worktree` of the last release's commit), B this checkout's (or
`--b-src`), `wrk` alternating between them round after round, so the machine's drift hits
both alike.

    git worktree add --detach /tmp/pz-a <commit>
    .venv/bin/python bench/ab.py --a-src /tmp/pz-a/src --rounds 8 --duration 10

S1: 1 KiB HIT (wrk -t2 -c64); S2: 50 MiB HIT (wrk -t2 -c8); S8: 10,000 distinct 10 KiB
objects never seen before (64 connections): a cold pass, each URL once (every request a
miss), then a warm pass cycling through the same URLs for `--duration` s; fresh URLs for
every round and side. Prints each round and the median B/A ratio per scenario (S1, S2,
S8cold, S8warm); writes bench/results/ab.json.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from pzbench import procs
from pzbench.load import WrkResult, warm, wrk
from pzbench.procs import Origin, Pullzone

BENCH = Path(__file__).resolve().parent
HOST = "ab.localhost"  # zone "ab": S1 and S2, the Python origin below
S8_HOST = "ab8.localhost"  # zone "ab8": S8, the nginx origin
BODIES = {"/1k.bin": b"x" * 1024, "/50m.bin": b"y" * (50 * 1024 * 1024)}
HIT_SCENARIOS = {"S1": ("/1k.bin", 64), "S2": ("/50m.bin", 8)}
SCENARIOS = ("S1", "S2", "S8")
UNITS = {"S1": "req/s", "S2": "GB/s", "S8cold": "req/s", "S8warm": "req/s"}
TEN = 10 * 1024
S8_CONNECTIONS = 64
S8_COLD_BOUND = 120  # s: a cold pass ends when every URL has been answered; this bounds it
SNAPSHOT_WAIT = 1.5  # s: the edge workers write their counters once a second


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


def imported_from(src: Path) -> str:
    """Where `import pullzone` resolves with PYTHONPATH=src (the venv's own install
    would win silently if src held no package)."""
    r = subprocess.run(
        [sys.executable, "-c", "import pullzone; print(pullzone.__file__)"],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    found = r.stdout.strip()
    if not Path(found).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"ab: with PYTHONPATH={src}, pullzone is imported from {found}")
    return found


def cache_counts(pz: Pullzone, zone_id: int) -> dict[str, int] | None:
    """The zone's edge answers by X-Cache status so far (`pullzone_requests` in /metrics);
    None when /metrics does not answer (an older A side may not have it)."""
    try:
        r = httpx.get(
            f"http://127.0.0.1:{pz.api_port}/metrics",
            headers={"X-API-Key": procs.API_KEY},
            timeout=30,
        )
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    counts: dict[str, int] = {}
    for line in r.text.splitlines():
        m = re.match(r"pullzone_requests(?:_total)?\{([^}]*)\}\s+(\S+)", line)
        if m is None:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("zone") == str(zone_id):
            status = labels.get("cache_status", "?")
            counts[status] = counts.get(status, 0) + int(float(m.group(2)))
    return counts


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in procs._children_of(pid):
        pids.extend(_tree(child))
    return pids


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU time so far of a process and (by default) its descendants
    (nginx's workers, pullzone's edge workers), from /proc."""
    ticks = 0
    for one in _tree(pid) if descendants else [pid]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_line() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


class Meter:
    """Around one pass: how busy some processes were (CPU seconds per second of the pass,
    1.0 = one core): each of the measured server's edge workers (`workers`: how evenly
    the kernel spread the connections), the origin, the idle server; and the machine's
    steal time (the share of CPU time the hypervisor gave to others). The context of a
    noisy number."""

    def __init__(self, workers: list[int], **processes: Any) -> None:
        self.workers = workers
        self.processes = {name: p.pid for name, p in processes.items()}

    def _sample(self) -> tuple[list[float], dict[str, float], list[int]]:
        return (
            [cpu_seconds(pid, descendants=False) for pid in self.workers],
            {name: cpu_seconds(pid) for name, pid in self.processes.items()},
            _cpu_line(),
        )

    def __enter__(self) -> Meter:
        self.t0 = time.monotonic()
        self.start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.monotonic() - self.t0, 1e-6)
        (workers0, cpu0, stat0), (workers1, cpu1, stat1) = self.start, self._sample()
        stat = [b - a for a, b in zip(stat0, stat1, strict=False)]
        total: int = sum(stat)
        self.result = {
            "workers_cpu": [
                round((b - a) / wall, 3) for a, b in zip(workers0, workers1, strict=True)
            ],
            **{f"{name}_cpu": round((cpu1[name] - cpu0[name]) / wall, 3) for name in cpu0},
            "steal": round(stat[7] / total, 3) if len(stat) > 7 and total else None,
        }


def delta(after: dict[str, int] | None, before: dict[str, int] | None) -> dict[str, int] | None:
    """Answers by X-Cache status between two `cache_counts`."""
    if after is None or before is None:
        return None
    diff = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(after) | set(before))}
    return {k: n for k, n in diff.items() if n}


def s8_pass(
    pz: Pullzone,
    idle: Pullzone,
    zone_id: int,
    origin: Origin,
    prefix: str,
    pathfile: Path,
    n: int,
    duration: int,
) -> tuple[float | None, float, dict[str, Any]]:
    """One side's S8 in one round: (cold req/s or None if it did not complete, warm req/s,
    details). `prefix` is new to every cache, so each cold request is a miss. `idle`: the
    other side's server, whose CPU use during the passes is recorded."""
    pathfile.write_text("".join(f"{prefix}ten/{i}.bin\n" for i in range(n)))
    before = cache_counts(pz, zone_id)
    # After its share, a wrk thread asks for the cached 1 KiB object (the sentinel) until
    # the last 10 KiB answer is in (see configs/wrk.lua): nothing cold is cut off.
    workers = pz.worker_pids()
    with Meter(workers, origin=origin.process, idle_side=idle.process) as cold_meter:
        cold: WrkResult = wrk(
            pz.base + "/1k.bin", S8_HOST, threads=2, connections=S8_CONNECTIONS,
            duration=S8_COLD_BOUND, mode="cold", pathfile=pathfile, min_bytes=TEN // 2,
        )  # fmt: skip
    time.sleep(SNAPSHOT_WAIT)
    origin_cold = origin.count(prefix)
    middle = cache_counts(pz, zone_id)
    with Meter(workers, idle_side=idle.process) as warm_meter:
        hot: WrkResult = wrk(
            pz.base + "/", S8_HOST, threads=2, connections=S8_CONNECTIONS,
            duration=duration, mode="cycle", pathfile=pathfile,
        )  # fmt: skip
    time.sleep(SNAPSHOT_WAIT)
    origin_total = origin.count(prefix)
    after = cache_counts(pz, zone_id)
    cold_status = delta(middle, before)  # the n cold URLs, and the sentinel's HITs
    details = {
        "cold": {
            **cold.as_dict(),
            "objects": n,
            "origin_requests": origin_cold,
            "non_200": sum(c["bad"] for c in cold.cold),
            "x_cache": cold_status,
            "all_misses": origin_cold == n
            and (cold_status is None or cold_status.get("MISS", 0) == n),
            **cold_meter.result,
        },
        "warm": {
            **hot.as_dict(),
            "origin_requests": origin_total - origin_cold,
            "x_cache": delta(after, middle),
            **warm_meter.result,
        },
    }
    return cold.cold_rps, hot.rps, details


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a-src", type=Path, required=True, help="the A side's src/ folder")
    parser.add_argument(
        "--b-src", type=Path, default=BENCH.parent / "src",
        help="the B side's src/ folder (default: src/ next to bench/)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10, help="s per wrk run (S8: warm)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated, of S1,S2,S8"
    )
    parser.add_argument("--s8-objects", type=int, default=10_000, help="distinct URLs per S8 pass")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "ab.json")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (data, logs)")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    args = parser.parse_args()
    wanted = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown or not wanted:
        parser.error(f"--scenarios: {', '.join(unknown) or 'none'} (choose from S1,S2,S8)")
    hit_scenarios = {s: HIT_SCENARIOS[s] for s in SCENARIOS if s in wanted and s in HIT_SCENARIOS}
    # wrk; and nginx, S8's origin (installed when missing, as bench/run.py does).
    procs.ensure_tools(not args.no_install, ("wrk", "nginx") if "S8" in wanted else ("wrk",))
    srcs = {"A": args.a_src.resolve(), "B": args.b_src.resolve()}
    sources = {side: imported_from(src) for side, src in srcs.items()}
    for side, found in sources.items():
        print(f"{side}: pullzone from {found}")
    atexit.register(procs.stop_all)
    work = Path(tempfile.mkdtemp(prefix="pullzone-ab-"))
    http_origin = None
    nginx_origin = None
    servers: dict[str, Pullzone] = {}
    s8_zones: dict[str, int] = {}
    names = [*hit_scenarios, *(("S8cold", "S8warm") if "S8" in wanted else ())]
    results: dict[str, dict[str, list[float | None]]] = {s: {"A": [], "B": []} for s in names}
    s8_details: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    try:
        if hit_scenarios:
            http_origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
            http_origin.daemon_threads = True
            threading.Thread(target=http_origin.serve_forever, daemon=True).start()
        if "S8" in wanted:
            # nginx, as in bench/run.py: /u/<anything>/ten/<N>.bin is one 10 KiB file, a
            # distinct object per URL in the caches; `expires 24h`: max-age=86400.
            root = work / "origin-files"
            root.mkdir()
            (root / "1k.bin").write_bytes(os.urandom(1024))  # the cold pass's sentinel
            (root / "10k.bin").write_bytes(os.urandom(TEN))
            nginx_origin = Origin(work / "origin", root, slow_rate="1m", expires="24h").start()
            (work / "paths").mkdir()
        for side, src in srcs.items():
            os.environ["PYTHONPATH"] = str(src)  # the side's code (the children inherit it)
            pz = servers[side] = Pullzone(work / side, args.workers).start()
            if http_origin is not None:
                pz.create_zone("ab", f"http://127.0.0.1:{http_origin.server_port}")
            if nginx_origin is not None:
                s8_zones[side] = int(pz.create_zone("ab8", nginx_origin.base)["id"])
        os.environ.pop("PYTHONPATH", None)
        for pz in servers.values():
            for path, _ in hit_scenarios.values():
                warm(pz.base, HOST, path)
            if nginx_origin is not None:
                xcache = warm(pz.base, S8_HOST, "/1k.bin")
                if not xcache.upper().startswith("HIT"):
                    raise RuntimeError(f"S8's sentinel not cached (X-Cache {xcache!r})")
        if nginx_origin is not None:
            time.sleep(SNAPSHOT_WAIT)  # the warming's MISS in the counters before S8's
        for r in range(args.rounds):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for name, (path, connections) in hit_scenarios.items():
                for side in order:
                    res = wrk(
                        servers[side].base + path, HOST, threads=2,
                        connections=connections, duration=args.duration,
                    )  # fmt: skip
                    value = res.rps if name == "S1" else res.bytes_per_s / 1e9
                    results[name][side].append(value)
                    print(
                        f"round {r + 1} {name} {side}: {value:,.2f} errors {res.error_count}",
                        flush=True,
                    )
            if nginx_origin is not None:
                for side in order:
                    prefix = f"/u/s8-r{r + 1}-{side}/"
                    other = servers["B" if side == "A" else "A"]
                    cold_rps, warm_rps, details = s8_pass(
                        servers[side], other, s8_zones[side], nginx_origin, prefix,
                        work / "paths" / f"s8-r{r + 1}-{side}.txt", args.s8_objects,
                        args.duration,
                    )  # fmt: skip
                    results["S8cold"][side].append(cold_rps)
                    results["S8warm"][side].append(warm_rps)
                    s8_details[side].append({"round": r + 1, "prefix": prefix, **details})
                    c, w = details["cold"], details["warm"]
                    print(
                        f"round {r + 1} S8 {side}: cold {cold_rps or 0:,.0f} req/s (origin "
                        f"{c['origin_requests']}/{args.s8_objects}, X-Cache {c['x_cache']}, "
                        f"non-200 {c['non_200']}; workers CPU {c['workers_cpu']}, "
                        f"origin CPU {c['origin_cpu']:.0%}, other "
                        f"side {c['idle_side_cpu']:.0%}, steal {c['steal'] or 0:.0%}), warm "
                        f"{warm_rps:,.0f} req/s (origin +{w['origin_requests']}, X-Cache "
                        f"{w['x_cache']}, errors {sum(w['errors'].values())}; workers CPU "
                        f"{w['workers_cpu']}, other side "
                        f"{w['idle_side_cpu']:.0%}, steal {w['steal'] or 0:.0%})",
                        flush=True,
                    )
                    if cold_rps is None:
                        print(f"  WARNING: the cold pass did not complete in {S8_COLD_BOUND} s")
                    if not c["all_misses"]:
                        print("  WARNING: the cold pass was not all misses")
    finally:
        procs.stop_all()
        if http_origin is not None:
            http_origin.shutdown()
        if args.keep_tmp:
            print(f"temp dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, Any] = {}
    for name, sides in results.items():
        ratios = [b / a for a, b in zip(sides["A"], sides["B"], strict=True) if a and b is not None]
        a_values = [v for v in sides["A"] if v is not None]
        b_values = [v for v in sides["B"] if v is not None]
        summary[name] = {
            "unit": UNITS[name],
            "A_median": statistics.median(a_values) if a_values else None,
            "B_median": statistics.median(b_values) if b_values else None,
            "B_over_A_median": round(statistics.median(ratios), 3) if ratios else None,
            "B_over_A": [round(x, 3) for x in ratios],
            "rounds": sides,
        }
        row = summary[name]
        print(
            f"{name}: A {row['A_median'] or 0:,.2f}  B {row['B_median'] or 0:,.2f} {UNITS[name]}"
            f"  B/A median {row['B_over_A_median']}"
            f"  per round {' '.join(f'{x:.2f}' for x in ratios)}"
        )
    if "S8" in wanted:
        summary["S8"] = {"objects": args.s8_objects, "connections": S8_CONNECTIONS, **s8_details}
        runs = s8_details["A"] + s8_details["B"]
        every = all(run["cold"]["all_misses"] for run in runs)
        print(f"S8: every cold pass all misses: {'yes' if every else 'NO'} ({len(runs)} passes)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "a_src": str(args.a_src),
                "b_src": str(args.b_src),
                "imported_from": sources,
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "config": {
                    "rounds": args.rounds,
                    "duration_s": args.duration,
                    "workers": args.workers,
                    "scenarios": wanted,
                },
                **summary,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
