"""The origin shield's pure parts: which shield owns an object (rendezvous hashing), the
workers' view of the shields file, what an edge sends a shield and shows its clients."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

from pullzone.control.stats import Load, recent_load
from pullzone.edge import shields
from pullzone.edge.labels import XCache
from pullzone.edge.origin import shield_headers
from pullzone.edge.shields import ShieldNode, Shields, rank
from pullzone.edge.stats import MinuteCount, Snapshot
from pullzone.edge.switches import ResponseEdits
from pullzone.edge.writer import cache_fields, client_headers, shield_outcome
from pullzone.spec.headers import header_map

A, B, C = (ShieldNode(f"shield-{n}", f"10.0.0.{n}:80") for n in (1, 2, 3))
KEYS = [f"1 /object/{i}" for i in range(3000)]


def test_every_edge_ranks_the_shields_alike_and_the_keys_spread_evenly() -> None:
    firsts = Counter(rank([A, B, C], key)[0] for key in KEYS)
    assert all(rank([C, A, B], key) == rank([A, B, C], key) for key in KEYS[:100])
    assert set(firsts) == {A, B, C}
    assert min(firsts.values()) > len(KEYS) / 3 * 0.85, firsts


def test_a_shield_leaving_moves_only_its_own_objects() -> None:
    before = {key: rank([A, B, C], key)[0] for key in KEYS}
    after = {key: rank([A, C], key)[0] for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert moved and all(before[key] == B for key in moved)
    # Each of B's objects goes to its second choice there, which is where edges fail over.
    assert all(after[key] == rank([A, B, C], key)[1] for key in moved)


def test_workers_read_the_shields_file_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "run" / "shields.json"
    view = Shields(path)
    assert view.order("k") == []  # no file: the origin is asked
    shields.write(path, [A, B])
    view._checked -= shields.RELOAD_EVERY  # a second later
    assert set(view.order("k")) == {A, B}
    shields.write(path, [A])
    os.utime(path, ns=(1, 1))  # another mtime, whatever the clock's grain
    view._checked -= shields.RELOAD_EVERY
    assert view.order("k") == [A]


def test_a_shield_that_failed_is_skipped_then_asked_again(tmp_path: Path) -> None:
    path = tmp_path / "shields.json"
    shields.write(path, [A, B])
    view = Shields(path)
    first, second = view.order("k")
    view.failed(first)
    assert view.order("k") == [second]
    view._down[first.node] -= shields.DOWN_FOR
    assert view.order("k") == [first, second]


def test_a_damaged_shields_file_means_no_shield(tmp_path: Path) -> None:
    path = tmp_path / "shields.json"
    for body in ("", "{", '{"shields": [{"node": "a"}]}', "[1]", '{"shields": 3}'):
        path.write_text(body)
        assert shields.read(path) == (), body


def test_a_shield_is_sent_the_zones_name_the_secret_and_the_edges_event() -> None:
    forwarded = [
        ("Accept", "*/*"),
        ("X-Forwarded-For", "192.0.2.7, 198.51.100.9"),
        ("CDN-Loop", "other-cdn, localhost"),
        ("X-Real-IP", "198.51.100.9"),
        ("Host", "origin.example:8080"),
    ]
    sent = shield_headers(forwarded, "zone.localhost", "secret", 42, "localhost")
    fields = header_map(sent)
    assert fields["host"] == "zone.localhost"
    assert fields["x-pullzone-internal"] == "secret"
    assert fields["x-pullzone-seq"] == "42"
    # This hop's entries are the shield's to add: one CDN-Loop entry, one client address.
    assert fields["cdn-loop"] == "other-cdn"
    assert fields["x-forwarded-for"] == "192.0.2.7"
    assert fields["x-real-ip"] == "198.51.100.9"
    alone = header_map(
        shield_headers(
            [("CDN-Loop", "localhost"), ("X-Real-IP", "198.51.100.9")], "z", "s", 1, "localhost"
        )
    )
    assert "cdn-loop" not in alone


def test_a_shield_passes_on_what_is_for_caches_and_an_edge_keeps_it_from_clients() -> None:
    stored = [
        ("Cache-Control", "no-store"),
        ("CDN-Cache-Control", "max-age=600"),
        ("Surrogate-Key", "a b"),
        ("Set-Cookie", "s=1"),
        ("Age", "30"),
        ("X-Cache", "HIT"),
        ("Content-Length", "3"),
    ]
    to_edge = client_headers(
        stored,
        header_map(stored),
        None,
        ResponseEdits(removed=frozenset({"set-cookie"}), for_cache=True),
    )
    assert to_edge == stored[:3]
    to_client = client_headers(stored, header_map(stored), None)
    assert [n for n, _ in to_client] == ["Cache-Control", "Set-Cookie"]


def test_x_cache_says_what_the_shield_answered() -> None:
    assert shield_outcome(header_map([("X-Cache", "HIT")])) is None  # not from a shield
    marked = [("X-Cache", "HIT"), ("X-Pullzone-Shield", "shield-1")]
    assert shield_outcome(header_map(marked)) is XCache.HIT
    odd = [("X-Cache", "HIT\r\nX-Evil: 1"), ("X-Pullzone-Shield", "shield-1")]
    assert shield_outcome(header_map(odd)) is XCache.MISS
    assert cache_fields(XCache.MISS, None, XCache.HIT) == b"X-Cache: MISS, shield=HIT\r\n"
    assert cache_fields(XCache.MISS, None) == b"X-Cache: MISS\r\n"


def _worker(minutes: tuple[MinuteCount, ...], connections: int) -> Snapshot:
    return Snapshot(
        pid=1, at=0.0, applied=0, requests=(), minutes=minutes, origin=(), faults={},
        connections=connections, write_failures={}, fills_not_stored={}, evicted=0,
    )  # fmt: skip


def test_a_shields_load_is_its_last_minute_and_the_current_one_so_far() -> None:
    now = 1_000 * 60 + 30.0  # 30 s into minute 1,000
    workers = [
        _worker((MinuteCount(1_000, 1, "HIT", 60), MinuteCount(998, 1, "MISS", 900)), 3),
        _worker((MinuteCount(999, 2, "MISS", 20), MinuteCount(1_000, 2, "STALE", 10)), 2),
    ]
    load = recent_load(workers, now)
    assert load == Load(per_second=1.0, hit_ratio=round(70 / 90, 3), connections=5)
    assert recent_load([], now) == Load(0.0, None, 0)


async def test_fills_waiting_on_a_silent_shield_share_one_check_of_it(tmp_path: Path) -> None:
    """A listener that accepts and never answers, as a stopped shield's kernel does: 50
    fills asking at once open one connection, and all learn it does not answer."""
    accepted = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        view = Shields(tmp_path / "shields.json")
        stalled = ShieldNode("shield-1", f"127.0.0.1:{port}")
        answers = await asyncio.gather(*(view.answering(stalled, "t") for _ in range(50)))
        assert answers == [False] * 50
        assert len(accepted) == 1
    finally:
        server.close()
        for writer in accepted:
            writer.close()


async def test_a_shield_that_answers_options_star_is_alive(tmp_path: Path) -> None:
    seen: list[bytes] = []

    async def shield(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(shield, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        view = Shields(tmp_path / "shields.json")
        assert await view.answering(ShieldNode("shield-1", f"127.0.0.1:{port}"), "secret")
        assert seen[0].startswith(b"OPTIONS * HTTP/1.1\r\n")
        assert b"\r\nx-pullzone-internal: secret\r\n" in seen[0]
    finally:
        server.close()
