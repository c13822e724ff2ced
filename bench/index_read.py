#!/usr/bin/env python3
"""What a worker's read of the index costs (`CacheIndex.variants`, the first touch of an
object and a miss's lookup) when another process commits between two reads, as the
other workers' and the writes threads' inserts do under S8 cold and S15, against the same
reads with no writer.

    .venv/bin/python bench/index_read.py                # 30,000 rows, ~15 s

A cache.db of `--rows` objects (the real schema, cache/index.py) in a temporary
directory; a writer process inserts one row per transaction every `--gap` s; the reader
reads 3,000 keys that are stored and 3,000 that are not, sleeping `--gap` between two
reads, and times the reads alone. SQLite drops a connection's page cache when the database
changed since its last read (WAL mode too), so a read after a commit reads its pages
again from the OS. Writes bench/results/index_read.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pullzone.cache.index import CacheIndex, create_schema
from pullzone.cache.stored import ResponseHead
from pullzone.sqlite import connect, transaction

BENCH = Path(__file__).resolve().parent
READS = 3_000
_INSERT = (
    "INSERT INTO objects (id, key_hash, zone_id, path, query, meta, body_offset, size,"
    " stored_seq, stale, last_access) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
_META = ResponseHead(
    200,
    "OK",
    (("content-type", "application/octet-stream"), ("cache-control", "max-age=86400")),
    request_time=1.7e9,
    response_time=1.7e9,
    length=10240,
).to_json()


def _key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _row(i: int) -> tuple[Any, ...]:
    return (f"{i:032x}", _key(str(i)), 1, f"/ten/{i}.bin", "", _META, 300, 10240, 1, 0, 1.7e9)


def _writer(path: str, gap: float, stop: Any) -> None:
    conn = connect(path)
    i = 10**9
    while not stop.is_set():
        with transaction(conn):
            conn.execute(_INSERT, _row(i))
        i += 1
        time.sleep(gap)


def read_times(index: CacheIndex, keys: list[str], gap: float) -> float:
    """Mean µs per read, reads alone timed."""
    spent = 0.0
    for key in keys:
        start = time.perf_counter()
        index.variants(key)
        spent += time.perf_counter() - start
        time.sleep(gap)
    return round(spent / len(keys) * 1e6, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--gap", type=float, default=0.0002, help="s between two commits")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "index_read.json")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pullzone-index-read-") as tmp:
        path = f"{tmp}/cache.db"
        conn = connect(path)
        create_schema(conn)
        with transaction(conn):
            conn.executemany(_INSERT, [_row(i) for i in range(args.rows)])
        index = CacheIndex(connect(path))
        stored = [_key(str(i)) for i in range(0, args.rows, max(1, args.rows // READS))][:READS]
        absent = [_key(f"absent {i}") for i in range(READS)]
        for writes in (False, True):
            stop = multiprocessing.Event()
            writer = multiprocessing.Process(target=_writer, args=(path, args.gap, stop))
            if writes:
                writer.start()
                time.sleep(0.5)
            name = "a commit between reads" if writes else "no writer"
            results[name] = {
                "stored_us": read_times(index, stored, args.gap),
                "absent_us": read_times(index, absent, args.gap),
            }
            if writes:
                stop.set()
                writer.join()
            print(f"{name:24} {results[name]}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "config": {"rows": args.rows, "gap_s": args.gap, "reads": READS},
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
