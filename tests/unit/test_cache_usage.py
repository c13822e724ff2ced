"""What the API reads of the cache index (cache.usage): objects and bytes by zone, the
running total, and the invalidation count (real SQLite, no server)."""

from __future__ import annotations

from pathlib import Path

from test_cache_store import put

from pullzone.cache import usage
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex, create_schema
from pullzone.cache.usage import Usage
from pullzone.sqlite import connect


def test_an_empty_index_holds_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "cache.db")
    create_schema(conn)
    assert usage.by_zone(conn) == {}
    assert usage.total_bytes(conn) == 0
    assert usage.invalidations(conn) == 0


def test_usage_follows_what_is_stored_and_withdrawn(tmp_path: Path) -> None:
    conn = connect(tmp_path / "cache.db")
    create_schema(conn)
    index, bodies = CacheIndex(conn), BodyStore(tmp_path / "cache")
    first = put(index, bodies, "/a", body=b"x" * 10)
    put(index, bodies, "/b", body=b"y" * 5)
    assert usage.by_zone(conn) == {1: Usage(objects=2, bytes=15)}
    assert usage.total_bytes(conn) == 15

    index.withdraw(first.id)
    assert usage.by_zone(conn) == {1: Usage(objects=1, bytes=5)}
    assert usage.total_bytes(conn) == 5
    assert usage.invalidations(conn) == 1
