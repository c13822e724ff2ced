"""A worker's stats snapshot as a typed record (edge.stats.Snapshot): what the worker
counted, the file it writes, and the node's totals the API adds up from those files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pullzone.config import Settings
from pullzone.control.stats import NodeStats, write_janitor
from pullzone.edge.stats import (
    MinuteCount,
    OriginCount,
    RequestCount,
    Snapshot,
    WorkerStats,
    read_snapshots,
)

NOW = 1_800_000_000.0
MINUTE = int(NOW) // 60

# A worker's file as the snapshot wrote it before it was a record (origin counts as floats).
BEFORE = (
    '{"pid":41,"at":1800000000.0,"applied":9,"requests":[[3,"HIT",5,500]],'
    '"minutes":[[30000000,3,"HIT",5]],"origin":[[3,2.0,1.0,0.5,0,0,0,0,0,0,1.0,1.0,0,0,0,0]],'
    '"faults":[["header_timeout",2]],"connections":4,"write_failures":{"lru":1},'
    '"fills_not_stored":{"too_big":1},"evicted":6}'
)


def test_a_snapshot_is_what_the_worker_counted_and_its_file_reads_back(tmp_path: Path) -> None:
    stats = WorkerStats(tmp_path)
    stats.count(3, "MISS", 100)
    stats.count(3, "HIT", 40)
    stats.count(3, "HIT", 60)
    stats.origin_answer(3, failed=False, seconds=0.02)
    stats.fault("connection_shed")
    stats.not_stored("too_big")
    snap = stats.snapshot(applied=12, now=NOW)
    assert snap.applied == 12 and snap.at == NOW
    assert set(snap.requests) == {RequestCount(3, "MISS", 1, 100), RequestCount(3, "HIT", 2, 100)}
    assert set(snap.minutes) == {
        MinuteCount(MINUTE, 3, "MISS", 1),
        MinuteCount(MINUTE, 3, "HIT", 2),
    }
    [origin] = snap.origin
    assert (origin.zone_id, origin.requests, origin.failures, sum(origin.buckets)) == (3, 1, 0, 1)
    assert snap.faults == {"connection_shed": 1} and snap.fills_not_stored == {"too_big": 1}

    stats.write(applied=12)
    [read] = read_snapshots(tmp_path)
    assert read.requests == snap.requests and read.minutes == snap.minutes
    assert read.origin == snap.origin and read.pid == snap.pid


def test_a_file_written_before_the_record_reads_the_same() -> None:
    snap = Snapshot.from_json(BEFORE)
    assert snap == Snapshot(
        pid=41,
        at=NOW,
        applied=9,
        requests=(RequestCount(3, "HIT", 5, 500),),
        minutes=(MinuteCount(30_000_000, 3, "HIT", 5),),
        origin=(OriginCount(3, 2, 1, 0.5, (0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0)),),
        faults={"header_timeout": 2},
        connections=4,
        write_failures={"lru": 1},
        fills_not_stored={"too_big": 1},
        evicted=6,
    )
    # The same figures, as ints (and the protocol, refusal and compression counts, none in
    # a file from before them).
    assert json.loads(snap.to_json()) == {
        **json.loads(BEFORE),
        "protocols": {},
        "refused": {},
        "compressions": {},
        "refreshes": {},
        "slices": {},
    }


def test_the_node_adds_up_every_worker_and_the_janitor(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    directory = settings.stats_dir
    directory.mkdir(parents=True)
    (directory / "worker-41.json").write_text(BEFORE)
    other = Snapshot.from_json(BEFORE.replace('"pid":41', '"pid":42'))
    other = dataclasses.replace(other, compressions={"br": 2, "gzip": 1})
    (directory / "worker-42.json").write_text(other.to_json())
    (directory / "worker-43.json").write_text('{"pid": 43}')  # half a file: skipped
    write_janitor(directory, evicted=3, write_failures={"janitor": 2})

    stats = NodeStats(settings)
    totals = stats.totals()
    assert totals.worker_applied == {41: 9, 42: 9}
    assert totals.requests == {(3, "HIT"): 10} and totals.bytes == {3: 1000}
    assert totals.minutes == {(30_000_000, 3, "HIT"): 10}
    assert (totals.origin[3].requests, totals.origin[3].failures) == (4, 2)
    assert totals.origin[3].buckets[6:8] == [2, 2]
    assert totals.faults == {"header_timeout": 4} and totals.connections == 8
    assert totals.write_failures == {"lru": 2, "janitor": 2}
    assert totals.fills_not_stored == {"too_big": 2} and totals.evicted == 12
    assert totals.compressions == {"br": 2, "gzip": 1}
    assert stats.evictions() == 3


def test_an_unreadable_janitor_report_counts_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.stats_dir.mkdir(parents=True)
    (settings.stats_dir / "janitor.json").write_text("[1, 2]")
    stats = NodeStats(settings)
    assert stats.evictions() == 0 and stats.totals().write_failures == {}


def test_a_worker_without_origin_requests_has_no_origin_rows(tmp_path: Path) -> None:
    stats = WorkerStats(tmp_path)
    stats.count(0, "MISS", 10)  # no zone for the Host
    assert stats.snapshot(applied=0, now=NOW).origin == ()
