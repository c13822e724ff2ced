#!/usr/bin/env python3
"""S15's hit ratio under other eviction policies, by simulation: no server, S15's trace
(Zipf(1.0) over 200,000 objects of 1-100 KiB, bench/pzbench/workload.py) replayed against
a byte budget of 30 % of the objects' bytes.

    .venv/bin/python bench/eviction_sim.py                       # 600,000 requests, ~20 s
    .venv/bin/python bench/eviction_sim.py --requests 3000000     # S15's 5 minutes
    .venv/bin/python bench/eviction_sim.py --max-kib 102400 --fraction 0.05  # up to 100 MiB

`pullzone` is what the cache does now: LRU (cache/eviction.py), the janitor's watermarks
(evict to LOW_WATER once over HIGH_WATER), and an access recorded at most once per
LRU_INTERVAL per object (edge/lifecycle.py; time here is the request count over `--rate`,
S15's request rate). `LRU exact` is the reference: every access recorded, the whole budget
used. The others keep the watermarks and the coarse accesses, and evict the lowest
priority, a floor (the priority last evicted) plus a credit: GDSF (frequency / size, as
Squid's `heap GDSF`), the same with the square root of the size, and LFUDA (frequency
alone). A fill's request is a miss; every other request for a stored object a hit.
`--max-kib` and `--fraction` change the sizes (log-uniform from 1 KiB, as S15's) and the
budget. Prints the hit ratio over the whole trace (as S15 counts it, from an empty cache), over its
second half, and the byte hit ratio; writes bench/results/eviction_sim.json.
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import hashlib
import heapq
import itertools
import json
import random
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pzbench import workload

from pullzone.cache.eviction import HIGH_WATER, LOW_WATER
from pullzone.edge.lifecycle import LRU_INTERVAL

BENCH = Path(__file__).resolve().parent
OBJECTS = 200_000
FRACTION = 0.3
# (frequency, KiB) -> credit above the floor; None: the priority is the access time (LRU).
Credit = Callable[[int, int], float] | None


@dataclass
class Result:
    policy: str
    hit_ratio: float
    hit_ratio_second_half: float
    byte_hit_ratio: float


def sizes(objects: int, max_kib: int) -> list[int]:
    """KiB per object id: S15's (workload.size_kib) with another largest size."""
    if max_kib == workload.MAX_KIB:
        return workload.sizes(objects)
    out = []
    for i in range(objects):
        u = int.from_bytes(hashlib.blake2b(b"%d" % i, digest_size=8).digest(), "big") / 2**64
        out.append(min(max_kib, int((max_kib + 1) ** u)))
    return out


def zipf_trace(objects: int, requests: int, seed: int) -> list[int]:
    """Object ids, id k-1 drawn with probability proportional to 1/k (as configs/wrk.lua)."""
    rnd = random.Random(seed)
    weights = list(itertools.accumulate(1.0 / k for k in range(1, objects + 1)))
    return [bisect.bisect_left(weights, rnd.random() * weights[-1]) for _ in range(requests)]


def simulate(
    name: str,
    trace: list[int],
    kib: list[int],
    budget: int,
    credit: Credit,
    *,
    interval: float,
    rate: float,
    low: float,
    high: float,
) -> Result:
    priority: dict[int, float] = {}
    hits_of: dict[int, int] = {}
    recorded: dict[int, float] = {}
    heap: list[tuple[float, int]] = []  # (priority, id); stale pairs skipped when popped
    used = hits = late_hits = hit_kib = 0
    floor = 0.0
    half = len(trace) // 2
    for n, obj in enumerate(trace):
        now = n / rate
        if obj in priority:
            hits += 1
            late_hits += n >= half
            hit_kib += kib[obj]
            if now - recorded[obj] < interval:
                continue
            recorded[obj] = now
            hits_of[obj] += 1
        else:
            hits_of[obj] = 1
            recorded[obj] = now
            used += kib[obj]
        p = now if credit is None else floor + credit(hits_of[obj], kib[obj])
        priority[obj] = p
        heapq.heappush(heap, (p, obj))
        if used > budget * high:
            while used > budget * low:
                p, victim = heapq.heappop(heap)
                if priority.get(victim) != p:
                    continue
                floor = p
                used -= kib[victim]
                del priority[victim], hits_of[victim], recorded[victim]
    return Result(
        name,
        round(hits / len(trace), 4),
        round(late_hits / (len(trace) - half), 4),
        round(hit_kib / sum(kib[o] for o in trace), 4),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600_000)
    parser.add_argument("--rate", type=float, default=10_000, help="requests per second")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--max-kib", type=int, default=workload.MAX_KIB, help="largest size")
    parser.add_argument("--fraction", type=float, default=FRACTION, help="budget / all bytes")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "eviction_sim.json")
    args = parser.parse_args()
    kib = sizes(OBJECTS, args.max_kib)
    budget = int(sum(kib) * args.fraction)
    trace = zipf_trace(OBJECTS, args.requests, args.seed)
    coarse = {"interval": LRU_INTERVAL, "rate": args.rate, "low": LOW_WATER, "high": HIGH_WATER}
    runs: list[tuple[str, Credit, dict[str, float]]] = [
        ("LRU exact", None, {"interval": 0.0, "rate": args.rate, "low": 1.0, "high": 1.0}),
        ("pullzone (LRU)", None, coarse),
        ("GDSF", lambda f, s: f / s, coarse),
        ("GDSF, sqrt(size)", lambda f, s: f / s**0.5, coarse),
        ("LFUDA", lambda f, s: float(f), coarse),
    ]
    results = []
    for name, credit, how in runs:
        result = simulate(name, trace, kib, budget, credit, **how)
        results.append(result)
        print(
            f"{name:18} hit {result.hit_ratio:.2%}  second half {result.hit_ratio_second_half:.2%}"
            f"  bytes {result.byte_hit_ratio:.2%}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "config": {
                    "objects": OBJECTS,
                    "max_kib": args.max_kib,
                    "budget_fraction": args.fraction,
                    "requests": args.requests,
                    "rate": args.rate,
                    "seed": args.seed,
                    "lru_interval_s": LRU_INTERVAL,
                    "low_water": LOW_WATER,
                    "high_water": HIGH_WATER,
                },
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
