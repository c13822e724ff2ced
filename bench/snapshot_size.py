#!/usr/bin/env python3
"""A cluster snapshot's size and cost per zone (bus/snapshots.py, bus/snapshot_store.py).

    .venv/bin/python bench/snapshot_size.py                      # 1,000 and 10,000 zones
    .venv/bin/python bench/snapshot_size.py --zones 1000 --purges 3

For each zone count, a replica (control.db in a temporary directory) is built through the
real code path: each zone a `CreateZone` event made from the API's own body model (the
typical zone of bench/pzbench/zones.py: two cnames, a cache policy, signed URLs, an IP list,
a domain lock), applied by `Replica.apply`; with `--purges N`, N purges of every zone too
(the purge history is in the snapshot). Then, in this process: `capture` + `encode` (what
the writer does in its thread), the JSON before gzip, `decode` and `Replica.restore` into
an empty replica (what a joining node does); and a round trip through a real nats-server's
Object Store (`SnapshotStore.put` / `get`, 128 KB chunks, digest checked). Each timing is
the best of `--repeats`. Writes bench/results/snapshot_size.json.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime
import gzip
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from propagation import nats_server
from pzbench import procs
from pzbench.zones import zone_body

from pullzone.bus import snapshots
from pullzone.bus.events import CreateZone, Event, PurgeRequest
from pullzone.bus.jetstream import JetStreamBus
from pullzone.bus.snapshot_store import BUCKET, SnapshotStore, name_of
from pullzone.control.replica import Replica
from pullzone.control.zone_schemas import ZoneCreate
from pullzone.sqlite import connect
from pullzone.zones.plan import PurgeFile, PurgePlan

BENCH = Path(__file__).resolve().parent
T = TypeVar("T")


def best(repeats: int, work: Callable[[], T]) -> tuple[T, float]:
    """The result of `work` and its best time of `repeats`, in ms."""
    times, results = [], []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        results.append(work())
        times.append((time.perf_counter() - started) * 1000)
    return results[-1], round(min(times), 1)


def populate(replica: Replica, zones: int, purges: int) -> float:
    """`zones` zones, then `purges` purges of each, as the stream's events; seconds."""
    started = time.perf_counter()
    seq = replica.position
    stamp = "2026-12-03 12:00:00"
    for i in range(1, zones + 1):
        draft = ZoneCreate.model_validate(zone_body(i, f"https://origin-{i}.example.org")).draft()
        seq += 1
        payload = CreateZone(draft, derive_alias=False, stamp=stamp).to_payload()
        replica.apply(Event(seq, CreateZone.KIND, 0, payload, time.time()))
    ids = [z.id for z in replica.zones.list()]
    for n in range(purges):
        files = (PurgeFile(f"/assets/app-{n}.js", None, False), PurgeFile("/img/", None, True))
        plan = PurgePlan(whole_zone=False, delete=False, files=files)
        payload = PurgeRequest(plan, key_id="admin").to_payload()
        for zone_id in ids:
            seq += 1
            replica.apply(Event(seq, PurgeRequest.KIND, zone_id, payload, time.time()))
    return time.perf_counter() - started


async def store_round_trip(url: str, seq: int, data: bytes, repeats: int) -> tuple[float, float]:
    """The best put and get of `data` through the Object Store, in ms."""
    bus = await JetStreamBus.connect([url], "bench-snapshots", role="tool")
    try:
        store = SnapshotStore(await bus.object_store(BUCKET))
        puts, gets = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            await store.put(seq, data)
            puts.append((time.perf_counter() - started) * 1000)
            [stored] = [s for s in await store.list() if s.name == name_of(seq)]
            assert stored.size == len(data), stored
            started = time.perf_counter()
            got = await store.get(stored)
            gets.append((time.perf_counter() - started) * 1000)
            assert got == data
    finally:
        await bus.close()
    return round(min(puts), 1), round(min(gets), 1)


def measure(workdir: Path, url: str, zones: int, purges: int, repeats: int) -> dict[str, Any]:
    here = workdir / f"zones-{zones}"
    here.mkdir()
    with contextlib.closing(connect(here / "control.db", private=True)) as conn:
        replica = Replica(conn, "localhost")
        populated = populate(replica, zones, purges)

        def write() -> bytes:
            return snapshots.encode(snapshots.capture(conn, "bench"))

        data, write_ms = best(repeats, write)
        snapshot, capture_ms = best(repeats, lambda: snapshots.capture(conn, "bench"))
    raw = gzip.decompress(data)
    decoded, decode_ms = best(repeats, lambda: snapshots.decode(data))
    assert len(decoded.rows["zones"]) == zones
    with contextlib.closing(connect(here / "joined.db", private=True)) as conn:
        joined = Replica(conn, "localhost")
        _, restore_ms = best(repeats, lambda: joined.restore(decoded))
        assert len(joined.zones.list()) == zones and joined.position == snapshot.seq
    put_ms, get_ms = asyncio.run(store_round_trip(url, snapshot.seq, data, repeats))
    return {
        "zones": zones,
        "purges_per_zone": purges,
        "events": snapshot.seq,
        "populate_s": round(populated, 1),
        "json_bytes": len(raw),
        "gzip_bytes": len(data),
        "json_bytes_per_zone": round(len(raw) / zones),
        "gzip_bytes_per_zone": round(len(data) / zones),
        "capture_ms": capture_ms,
        "write_ms": write_ms,  # capture + encode
        "store_put_ms": put_ms,
        "store_get_ms": get_ms,
        "decode_ms": decode_ms,
        "restore_ms": restore_ms,
    }


COLUMNS = (
    ("zones", "zones"),
    ("purges_per_zone", "purges/zone"),
    ("json_bytes", "JSON B"),
    ("gzip_bytes", "stored B"),
    ("json_bytes_per_zone", "JSON B/zone"),
    ("gzip_bytes_per_zone", "stored B/zone"),
    ("write_ms", "capture+encode ms"),
    ("store_put_ms", "put ms"),
    ("store_get_ms", "get ms"),
    ("decode_ms", "decode ms"),
    ("restore_ms", "restore ms"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zones", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--purges", type=int, default=0, help="purges of every zone")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "snapshot_size.json")
    args = parser.parse_args()
    atexit.register(procs.stop_all)
    workdir = Path(tempfile.mkdtemp(prefix="pullzone-snapshot-size-"))
    nats, url = nats_server(workdir)
    try:
        rows = [measure(workdir, url, n, args.purges, args.repeats) for n in args.zones]
    finally:
        procs.stop(nats)
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "rows": rows,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": procs.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|" + "---:|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(f"{row[key]:,}" for key, _ in COLUMNS) + " |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
