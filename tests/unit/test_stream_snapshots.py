"""Snapshots of the replica (bus/snapshots.py) and the rules around them
(server/snapshotting.py, bus/retention.py, cache/applier.py's restart_at), without sockets:
what a snapshot takes and restores, that anything damaged is refused rather than
restored, when a node starts from one or restores one while running (and what its edge
workers then load), when one is written, which retention is refused."""

from __future__ import annotations

import contextlib
import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from pullzone.bus import snapshots
from pullzone.bus.events import (
    ACME_CHALLENGE_PUT,
    CERT_PUT,
    KEY_CREATE,
    KEY_REVOKE,
    PURGE,
    ZONE_CREATE,
    ZONE_DELETE,
    Event,
    KeyRecord,
)
from pullzone.bus.retention import check_retention, retention_limits
from pullzone.bus.snapshot_store import Stored, name_of
from pullzone.cache.applier import Applier
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex
from pullzone.cache.index import create_schema as create_cache_schema
from pullzone.certs.model import Certificate
from pullzone.cli.options import Role
from pullzone.cli.serve import cluster_settings
from pullzone.config import Settings
from pullzone.control import keys
from pullzone.control.history import HISTORY_LIMIT
from pullzone.control.replica import Replica
from pullzone.edge.state import EdgeState
from pullzone.server.cache_node import CacheNode
from pullzone.server.snapshotting import due, needs_snapshot, restore_due, usable
from pullzone.sqlite import connect
from pullzone.zones.model import Zone

ADMIN_HASH = keys.hash_key("the-node-admin-key")


def event(seq: int, kind: str, zone_id: int = 0, **payload: Any) -> Event:
    return Event(seq, kind, zone_id, payload, at=1000.0 + seq)


def create(seq: int, alias: str) -> Event:
    draft = Zone(id=0, name=alias, alias=alias, origin="http://o.test", cnames=(f"{alias}.test",))
    return event(
        seq, ZONE_CREATE, zone=draft.to_record(), derive_alias=False, stamp="2026-01-01 00:00:00"
    )


def cert(cert_id: int = 0) -> Certificate:
    return Certificate(
        id=cert_id, name="c", crt="CRT", key="KEY", cabundle="", domain="a.test",
        sans=("a.test",), valid_from=0.0, expiry=1e10,
    )  # fmt: skip


def key(key_id: str) -> KeyRecord:
    return KeyRecord(key_id, key_id, keys.hash_key(key_id), (1,), True, "2026-01-01 00:00:00")


def purge(seq: int, zone_id: int) -> Event:
    return event(
        seq, PURGE, zone_id, all=False, delete=False, files=[{"path": "/a"}], tags=[],
        key_id="admin",
    )  # fmt: skip


def open_replica(path: Path) -> Replica:
    path.parent.mkdir(parents=True, exist_ok=True)
    replica = Replica(connect(path), "cdn.test")
    keys.ensure_admin_key(
        replica.conn,
        Settings(data_dir=path.parent, admin_key="the-node-admin-key"),
    )
    return replica


@pytest.fixture()
def source(tmp_path: Path) -> Iterator[Replica]:
    """A replica that applied zones, a deleted zone, keys (one revoked), a certificate,
    an ACME challenge and purges: position 10."""
    replica = open_replica(tmp_path / "source" / "control.db")
    for e in [
        create(1, "one"),
        create(2, "two"),
        event(3, KEY_CREATE, key=key("key_000000000003").to_payload()),
        event(4, KEY_CREATE, key=key("key_000000000004").to_payload()),
        event(5, KEY_REVOKE, id="key_000000000004", at="2026-01-02 00:00:00"),
        event(6, CERT_PUT, cert=cert().to_record()),
        event(7, ACME_CHALLENGE_PUT, token="tok", key_authorization="tok.auth"),
        purge(8, 1),
        create(9, "nine"),
        event(10, ZONE_DELETE, 9),
    ]:
        replica.apply(e)
    yield replica
    replica.conn.close()


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: [tuple(row) for row in conn.execute(t.select)] for t in snapshots.TABLES} | {
        "zone_hosts": [tuple(r) for r in conn.execute("SELECT * FROM zone_hosts ORDER BY host")]
    }


def test_a_snapshot_restored_elsewhere_is_the_replica_it_was_taken_from(
    source: Replica, tmp_path: Path
) -> None:
    snapshot = snapshots.capture(source.conn, "api-1")
    assert snapshot.seq == 10 and snapshot.node == "api-1" and snapshot.zone_ids() == {1, 2}
    decoded = snapshots.decode(snapshots.encode(snapshot))
    assert decoded == snapshot

    target = open_replica(tmp_path / "target" / "control.db")
    target.apply(create(1, "stale-zone"))  # what a node away for long held: replaced
    target.restore(decoded)
    assert target.position == 10
    assert dump(target.conn) == dump(source.conn)
    assert [z.alias for z in target.zones.list()] == ["one", "two"]
    hosts = target.conn.execute("SELECT host, zone_id FROM zone_hosts WHERE host = 'two.test'")
    assert [tuple(r) for r in hosts] == [("two.test", 2)]  # host names rebuilt
    # The revoked key stays revoked; the node's own admin key is never replaced.
    revoked = keys.get_key(target.conn, "key_000000000004")
    assert revoked is not None and revoked.revoked_at is not None
    admin = target.conn.execute("SELECT key_hash FROM api_keys WHERE admin = 1").fetchall()
    assert [row[0] for row in admin] == [ADMIN_HASH]
    # The node goes on from the snapshot's sequence with the next event.
    target.apply(purge(11, 2))
    assert target.position == 11


def test_only_the_newest_purges_of_each_zone_are_taken(source: Replica) -> None:
    for seq in range(11, 11 + HISTORY_LIMIT + 5):
        source.apply(purge(seq, 2))
    rows = snapshots.capture(source.conn, "n").rows["purges"]
    by_zone = [row[1] for row in rows]
    assert by_zone.count(1) == 1 and by_zone.count(2) == HISTORY_LIMIT
    assert max(row[0] for row in rows) == 10 + HISTORY_LIMIT + 5


def reencoded(snapshot: snapshots.Snapshot, change: Any) -> bytes:
    document = json.loads(gzip.decompress(snapshots.encode(snapshot)))
    change(document)
    return gzip.compress(json.dumps(document).encode())


def _set(path: str, value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return change


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (_set("format", 2), "format"),
        (_set("seq", -1), "sequence"),
        (_set("seq", "10"), "sequence"),
        (_set("tables.zones.columns", ["id", "record"]), "columns"),
        (_set("tables.zones.rows.0", [1, "one"]), "row"),
        (_set("tables.certificates.rows.0.1", "{not json"), "record"),
        (_set("tables.zones.rows.0.0", 99), "another id"),
        (_set("tables.api_keys.rows.0.1", {"nested": 1}), "scalar"),
        (lambda d: d["tables"].pop("purges"), "tables"),
    ],
)
def test_a_snapshot_not_exactly_as_written_is_refused(
    source: Replica, change: Any, why: str
) -> None:
    data = reencoded(snapshots.capture(source.conn, "n"), change)
    with pytest.raises(snapshots.SnapshotError, match=why):
        snapshots.decode(data)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # cut short
        lambda b: b[:-12] + bytes([b[-12] ^ 0xFF]) + b[-11:],  # a flipped byte: the CRC
        lambda b: b"",
        lambda b: gzip.compress(b"\xff\xfe not utf-8"),
        lambda b: gzip.compress(b"[1, 2, 3]"),
    ],
)
def test_damaged_bytes_are_refused(source: Replica, damage: Any) -> None:
    data = snapshots.encode(snapshots.capture(source.conn, "n"))
    with pytest.raises(snapshots.SnapshotError):
        snapshots.decode(damage(data))


def test_a_refused_snapshot_changes_nothing_in_the_replica(source: Replica, tmp_path: Path) -> None:
    target = open_replica(tmp_path / "target" / "control.db")
    target.apply(create(1, "kept"))
    before = dump(target.conn)
    bad = snapshots.capture(source.conn, "n")
    bad.rows["zones"].append([3, "one", bad.rows["zones"][0][2]])  # alias is UNIQUE
    with pytest.raises(sqlite3.IntegrityError):
        target.restore(bad)
    assert dump(target.conn) == before and target.position == 1


# -- when a node starts from a snapshot, and which ------------------------------------------


def stored(*seqs: int) -> list[Stored]:
    return [Stored(name_of(s), s, 100, 1000.0 + s) for s in sorted(seqs, reverse=True)]


def test_a_node_needs_a_snapshot_once_the_stream_starts_after_its_next_event() -> None:
    assert not needs_snapshot(0, 1)  # nothing dropped yet
    assert not needs_snapshot(41, 42)  # the next event is the first one kept
    assert needs_snapshot(41, 43)
    assert needs_snapshot(0, 2)


def test_usable_snapshots_join_the_stream_and_are_newer_than_the_node() -> None:
    # The stream holds 50..80: a snapshot at 49 joins it, one at 40 leaves 41..48 missing,
    # one past 80 belongs to another stream.
    assert [s.seq for s in usable(stored(40, 49, 60, 90), 0, 50, 80)] == [60, 49]
    assert [s.seq for s in usable(stored(40, 49, 60), 55, 50, 80)] == [60]
    assert usable(stored(40), 0, 50, 80) == []


def test_a_running_node_restores_a_snapshot_while_events_it_needs_are_or_were_gone() -> None:
    assert not restore_due(41, 42, missed=False)
    assert restore_due(41, 43, missed=False)
    assert restore_due(60, 50, missed=True)  # went on past the gap: still not covered
    assert restore_due(0, 5, missed=False)


def test_a_node_that_applied_past_events_it_missed_may_take_a_snapshot_at_its_position() -> None:
    # It applied 50..60 after missing 41..49: a snapshot at 60 holds what it missed too.
    assert [s.seq for s in usable(stored(49, 60, 70), 60, 50, 80, at_position=True)] == [70, 60]
    assert [s.seq for s in usable(stored(49, 60, 70), 60, 50, 80)] == [70]


def test_a_snapshot_is_due_after_the_interval_or_many_events_and_never_for_nothing() -> None:
    newest = Stored(name_of(100), 100, 1, at=5000.0)
    assert due(1, None, 0.0, 60.0)  # none yet: at once
    assert not due(0, None, 0.0, 60.0)
    assert not due(100, newest, 9999.0, 60.0)  # nothing new since
    assert not due(101, newest, 5059.0, 60.0)
    assert due(101, newest, 5060.0, 60.0)
    assert due(100 + 500, newest, 5001.0, 60.0, every=500)


# -- retention ------------------------------------------------------------------------------


def test_a_retention_shorter_than_two_snapshot_intervals_is_refused() -> None:
    assert check_retention(7 * 86400, 900) is None
    assert check_retention(0, 900) is None  # forever
    assert check_retention(1800, 900) is None
    refused = check_retention(1799, 900)
    assert refused is not None and "--snapshot-interval" in refused
    with pytest.raises(typer.BadParameter, match="shorter than 2 snapshot intervals"):
        cluster_settings(
            Settings(data_dir=Path("/nonexistent")),
            urls="nats://127.0.0.1:4222",
            node_id="n",
            role=Role.all,
            replicas=1,
            purge_wait=1,
            max_bus_silence=1,
            stream_retention=60,
            snapshot_interval=60,
        )


def test_the_duplicate_window_stays_within_the_retention() -> None:
    assert retention_limits(0) == {"max_age": 0.0, "duplicate_window": 120.0}
    assert retention_limits(3.0) == {"max_age": 3.0, "duplicate_window": 3.0}
    assert retention_limits(86400.0)["duplicate_window"] == 120.0


# -- the cache of a node that starts from a snapshot ----------------------------------------


def test_a_cache_started_from_a_snapshot_revalidates_every_zone(tmp_path: Path) -> None:
    with contextlib.closing(connect(tmp_path / "cache.db")) as conn:
        create_cache_schema(conn)
        applier = Applier(conn, BodyStore(tmp_path / "cache"))
        applier.apply(purge(5, 1))  # zone 1 known to the cache, purged at 5
        applier.apply(purge(6, 9))  # zone 9, deleted while the node was away
        applier.restart_at(40, {1, 2})
        states = CacheIndex(conn).zone_states()
        assert applier.applied_seq() == 40
        assert (states[1].soft_all_seq, states[1].last_purge_seq) == (40, 40)
        assert states[2].soft_all_seq == 40 and states[2].hard_all_seq == 0
        assert states[9].hard_all_seq == 40
        assert applier.apply(purge(40, 1)).matched == 0  # at or below: a no-op
        assert applier.apply(purge(41, 2)).seq == 41 and applier.applied_seq() == 41


def test_the_workers_load_a_snapshot_restored_while_the_node_runs(
    source: Replica, tmp_path: Path
) -> None:
    """What the events the node never got made (another zone, a certificate, a challenge)
    reaches a running worker, and every zone it has is revalidated from the snapshot on."""
    settings = Settings(data_dir=tmp_path / "node", admin_key="the-node-admin-key")
    node = open_replica(settings.control_db)
    cache = CacheNode(settings)
    node.apply(create(1, "one"))
    cache.catch_up()
    worker = EdgeState(cache.control, cache.index, cache.signal, "cdn.test")
    assert set(worker.hosts) == {"one.test", "one.cdn.test"}
    snapshot = snapshots.capture(source.conn, "api")
    node.restore(snapshot)
    cache.restart_at(snapshot.seq, snapshot.zone_ids())
    assert worker.catch_up()  # what it holds in memory is read again too
    assert worker.applied == 10
    assert set(worker.hosts) == {"one.test", "one.cdn.test", "two.test", "two.cdn.test"}
    assert list(worker.certificates) == [6] and worker.challenges == {"tok": "tok.auth"}
    assert worker.zones[1].soft_all_seq == 10
    assert not worker.catch_up()  # loaded once
