"""The cache on disk: fill files, the index, and events applied to it (real SQLite, real
files, no server)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from pullzone.bus.events import PURGE, ZONE_DELETE, Event
from pullzone.cache.applier import Applier
from pullzone.cache.bodies import (
    COMPLETE,
    FAILED,
    FILLING,
    SPARE_FILES,
    BodyStore,
    FillReader,
    FillWriter,
    SpareFiles,
)
from pullzone.cache.index import CacheIndex, StoredObject, create_schema
from pullzone.cache.key import cache_key, key_hash
from pullzone.cache.stored import ResponseHead
from pullzone.edge.entry import Entry
from pullzone.sqlite import connect
from pullzone.zones.model import CachePolicy


@pytest.fixture()
def store(tmp_path: Path) -> tuple[CacheIndex, BodyStore, Applier]:
    conn = connect(tmp_path / "cache.db")
    create_schema(conn)
    bodies = BodyStore(tmp_path / "cache")
    return CacheIndex(conn), bodies, Applier(conn, bodies)


def put(
    index: CacheIndex,
    bodies: BodyStore,
    path: str,
    query: str = "",
    seq: int = 0,
    tags: list[str] | None = None,
    body: bytes = b"body",
    status: int = 200,
) -> StoredObject:
    khash = key_hash(cache_key(1, path, query, True))
    writer = FillWriter.claim(bodies, khash)
    assert writer is not None
    head = ResponseHead(status, "OK", (), 0.0, 0.0, len(body), tags=tuple(tags or ()))
    writer.write_head(head)
    writer.write(body)
    obj = StoredObject(
        id=bodies.new_id(),
        key_hash=khash,
        zone_id=1,
        path=path,
        query=query,
        head=head,
        body_offset=writer.body_offset,
        size=len(body),
        stored_seq=seq,
    )
    writer.complete(bodies.object_path(obj.id))
    index.insert(obj, seq)
    writer.end(COMPLETE)
    return obj


def purge(seq: int, **payload: object) -> Event:
    return Event(seq=seq, kind=PURGE, zone_id=1, payload=payload, at=0.0)


def test_one_leader_per_object_and_followers_read_the_growing_file(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    _, bodies, _ = store
    writer = FillWriter.claim(bodies, "k")
    assert writer is not None
    assert FillWriter.claim(bodies, "k") is None  # a live leader exists
    reader = FillReader.open(bodies, "k")
    assert reader is not None
    assert reader.read_head() is None
    head = ResponseHead(200, "OK", (("ETag", '"x"'),), 1.0, 2.0, 6)
    writer.write_head(head)
    writer.write(b"abc")
    assert reader.read_head() == head
    assert reader.read(0, 100) == b"abc"
    assert reader.state() == (FILLING, 0)
    writer.write(b"def")
    assert reader.read(3, 100) == b"def"
    writer.end(FAILED, 504)
    assert reader.state() == (FAILED, 504)
    reader.close()
    assert not bodies.part_path("k").exists()


def test_a_fill_whose_leader_died_is_failed_and_reclaimable(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    _, bodies, _ = store
    writer = FillWriter.claim(bodies, "k")
    assert writer is not None
    writer.write_head(ResponseHead(200, "OK", (), 0.0, 0.0))
    reader = FillReader.open(bodies, "k")
    assert reader is not None
    os.close(writer.fd)  # the leader's process died: its lock is gone, the file stays
    assert reader.state() == (FAILED, 502)
    reader.close()
    assert FillWriter.claim(bodies, "k") is not None


def test_completed_fill_is_indexed_under_its_final_name(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, _ = store
    obj = put(index, bodies, "/a", body=b"hello")
    [row] = index.variants(obj.key_hash)
    data = bodies.object_path(row.id).read_bytes()
    assert data[row.body_offset :] == b"hello"
    assert index.total_size() == 5
    assert not list(bodies.tmp.iterdir())


def test_soft_purge_of_a_path_marks_every_query_variant_stale(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    a = put(index, bodies, "/a", "v=1")
    b = put(index, bodies, "/a", "v=2")
    other = put(index, bodies, "/b")
    applied = applier.apply(purge(1, files=[{"path": "/a", "query": None, "prefix": False}]))
    assert applied.matched == 2
    assert index.variants(a.key_hash)[0].stale and index.variants(b.key_hash)[0].stale
    assert not index.variants(other.key_hash)[0].stale
    assert index.zone_state(1).last_purge_seq == 1


def test_hard_purge_removes_rows_and_bytes_before_returning(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    obj = put(index, bodies, "/img/a.png")
    keep = put(index, bodies, "/imgx")
    applier.apply(purge(1, delete=True, files=[{"path": "/img/", "query": None, "prefix": True}]))
    assert index.variants(obj.key_hash) == []
    assert not bodies.object_path(obj.id).exists()
    assert index.variants(keep.key_hash) != []


def test_exact_query_purge_touches_only_that_variant(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    a = put(index, bodies, "/a", "v=1")
    b = put(index, bodies, "/a", "v=2")
    applier.apply(purge(1, files=[{"path": "/a", "query": "v=1", "prefix": False}]))
    assert index.variants(a.key_hash)[0].stale
    assert not index.variants(b.key_hash)[0].stale


def test_tag_purge_matches_objects_by_tag(store: tuple[CacheIndex, BodyStore, Applier]) -> None:
    index, bodies, applier = store
    tagged = put(index, bodies, "/t1", tags=["red", "blue"])
    untagged = put(index, bodies, "/t2", tags=["green"])
    assert applier.apply(purge(1, tags=["blue"])).matched == 1
    assert index.variants(tagged.key_hash)[0].stale
    assert not index.variants(untagged.key_hash)[0].stale


def test_whole_zone_purge_is_one_row_whatever_the_zone_holds(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    objs = [put(index, bodies, f"/o{i}") for i in range(20)]
    applier.apply(purge(5, all=True, delete=True))
    assert index.zone_state(1).hard_all_seq == 5
    assert index.count() == 20  # nothing touched at purge time
    assert applier.reclaim() == 20  # the janitor reclaims in the background
    assert index.count() == 0
    assert not any(bodies.object_path(o.id).exists() for o in objs)


def test_events_apply_once_in_order(store: tuple[CacheIndex, BodyStore, Applier]) -> None:
    index, bodies, applier = store
    obj = put(index, bodies, "/a")
    applier.apply(purge(3, files=[{"path": "/zzz", "query": None, "prefix": False}]))
    # replaying an older event (a restart re-reading the log) changes nothing
    assert (
        applier.apply(purge(2, files=[{"path": "/a", "query": None, "prefix": False}])).matched == 0
    )
    assert not index.variants(obj.key_hash)[0].stale
    assert applier.applied_seq() == 3


def test_an_object_fetched_before_a_purge_is_stored_stale(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    applier.apply(purge(7, files=[{"path": "/late", "query": None, "prefix": False}]))
    obj = put(index, bodies, "/late", seq=6)  # its fetch began before purge 7 was applied
    assert index.variants(obj.key_hash)[0].stale


def test_zone_deletion_is_a_hard_whole_zone_purge(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, applier = store
    put(index, bodies, "/a")
    applier.apply(Event(seq=1, kind=ZONE_DELETE, zone_id=1, payload={}, at=0.0))
    assert index.zone_state(1).hard_all_seq == 1
    applier.reclaim()
    assert index.count() == 0


def test_an_entry_stored_before_the_clock_went_back_is_not_fresh(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, _ = store
    now = 1_700_000_000.0
    obj = put(index, bodies, "/clock")
    obj.head = ResponseHead(200, "OK", (("Cache-Control", "max-age=600"),), now, now)
    entry = Entry(obj, CachePolicy(), str(bodies.object_path(obj.id)), 0, False)
    assert entry.is_fresh({}, now + 10)
    assert not entry.is_fresh({}, now + 601)
    # The clock stepped back a day: the age is unknown, never a day younger.
    assert entry.age(now - 86400) == float("inf")
    assert not entry.is_fresh({}, now - 86400)


def _claim_repeatedly(
    root: str, rounds: int, out: Queue[tuple[int, int, str]], unnamed: bool
) -> None:
    """In a process of its own: claim, check the shared name is this leader's file, end."""
    store = BodyStore(Path(root))
    store.spares = SpareFiles(str(store.tmp), unnamed=unnamed)
    led = foreign = 0
    error = ""
    try:
        for _ in range(rounds):
            writer = FillWriter.claim(store, "contended")
            if writer is None:
                continue
            led += 1
            foreign += os.stat(store.part_path("contended")).st_ino != os.fstat(writer.fd).st_ino
            writer.end(FAILED)
    except OSError as exc:  # e.g. the shared name removed under its leader
        error = repr(exc)
    out.put((led, foreign, error))


@pytest.mark.parametrize("unnamed", [True, False], ids=["made-ahead", "named-first"])
def test_processes_racing_for_one_fill_never_share_or_lose_its_name(
    tmp_path: Path, unnamed: bool
) -> None:
    # Found by the purge consistency test: a claim created the part file, then locked it;
    # in between, a rival took it for abandoned and removed it, and a follower read the
    # rival's file as the leader's. Four processes contend for one object 2,000 times each.
    context = multiprocessing.get_context("fork")
    out: Queue[tuple[int, int, str]] = context.Queue()
    racers = [
        context.Process(target=_claim_repeatedly, args=(str(tmp_path), 2000, out, unnamed))
        for _ in range(4)
    ]
    for racer in racers:
        racer.start()
    results = [out.get(timeout=120) for _ in racers]
    for racer in racers:
        racer.join(30)
    assert [error for _, _, error in results] == [""] * 4
    assert sum(foreign for _, foreign, _ in results) == 0
    assert sum(led for led, _, _ in results) > 0
    assert not list((tmp_path / "tmp").iterdir())  # no private or part name left behind


def test_fills_hold_budget_within_the_limit_and_hand_it_to_their_row(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, bodies, _ = store
    put(index, bodies, "/old", body=b"x" * 100)
    assert index.reserve("a", os.getpid(), 50, limit=200)
    assert not index.reserve("b", os.getpid(), 51, limit=200)  # 100 + 50 + 51 > 200
    assert index.reserve("a", os.getpid(), 100, limit=200)  # a grows: its own 50 count once
    assert index.used() == 200
    index.release("a")
    assert index.used() == 100


def test_the_budget_of_a_dead_process_is_released(
    store: tuple[CacheIndex, BodyStore, Applier],
) -> None:
    index, _, _ = store
    assert index.reserve("mine", 1, 10, limit=100)
    assert index.reserve("dead", 2, 20, limit=100)
    assert index.release_dead(lambda pid: pid == 1) == 1
    assert index.used() == 10


def test_fill_readers_are_seen_by_the_leader_until_they_close(tmp_path: Path) -> None:
    bodies = BodyStore(tmp_path)
    writer = FillWriter.claim(bodies, "k")
    assert writer is not None and not writer.has_readers()
    readers = [FillReader.open(bodies, "k") for _ in range(2)]
    assert writer.has_readers()
    for reader in readers:
        assert reader is not None
        reader.close()
    assert not writer.has_readers()
    writer.end()


def _spare_inodes(tmp: Path) -> set[int]:
    """The inodes of this process's unnamed files in `tmp` (its spare files)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(f"{tmp}/#"):
                found.add(os.stat(f"/proc/self/fd/{fd}").st_ino)
    return found


def test_a_claim_links_a_file_made_ahead_in_a_thread_and_leaves_no_name_behind(
    tmp_path: Path,
) -> None:
    bodies = BodyStore(tmp_path / "cache")
    first = FillWriter.claim(bodies, "a")  # the first claim makes its own, and the stock
    assert first is not None
    first.end(FAILED)
    bodies.spares.join()
    ready = bodies.spares.stocked()
    assert ready >= SPARE_FILES - 1  # (that claim took one if the thread was quicker)
    ahead = _spare_inodes(bodies.tmp)
    assert len(ahead) == ready
    writer = FillWriter.claim(bodies, "b")
    assert writer is not None
    # The leader's file is one made ahead, already locked, now under its shared name only.
    assert os.fstat(writer.fd).st_ino in ahead
    assert os.stat(bodies.part_path("b")).st_ino == os.fstat(writer.fd).st_ino
    assert FillWriter.claim(bodies, "b") is None  # its lock was held before its name
    assert sorted(p.name for p in bodies.tmp.iterdir()) == ["b.part"]
    writer.end(FAILED)
    assert list(bodies.tmp.iterdir()) == []  # spare files have no name to leave


PARENT_STORE: list[BodyStore] = []


def _claim_in_child(out: Queue[int]) -> None:
    """In a forked child: a claim on the store the parent made, spare files and all."""
    writer = FillWriter.claim(PARENT_STORE[0], "forked")
    assert writer is not None
    out.put(os.fstat(writer.fd).st_ino)
    writer.end(FAILED)


def test_a_forked_child_never_claims_with_its_parents_spare_files(tmp_path: Path) -> None:
    bodies = BodyStore(tmp_path / "cache")
    writer = FillWriter.claim(bodies, "a")
    assert writer is not None
    writer.end(FAILED)
    bodies.spares.join()
    ahead = _spare_inodes(bodies.tmp)
    assert len(ahead) == bodies.spares.stocked() >= SPARE_FILES - 1
    PARENT_STORE[:] = [bodies]
    context = multiprocessing.get_context("fork")
    out: Queue[int] = context.Queue()
    child = context.Process(target=_claim_in_child, args=(out,))
    child.start()
    inode = out.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    # One open file description in both would be one flock for two leaders.
    assert inode not in ahead
    assert _spare_inodes(bodies.tmp) == ahead  # the parent's are still its own
