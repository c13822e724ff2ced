"""The janitor on a full data disk (real SQLite, real files on a real small tmpfs, no
server): its upkeep fails soft and is counted, and goes on once space returns."""

from __future__ import annotations

import asyncio
from pathlib import Path

from disk import fill_up, tmpfs
from test_cache_store import put

from pullzone.cache.applier import Applier
from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import CacheIndex, create_schema
from pullzone.config import Settings
from pullzone.control.stats import NodeStats
from pullzone.server.janitor import Janitor
from pullzone.sqlite import connect


def test_the_janitor_fails_soft_on_a_full_disk_and_counts_it(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "data", "4m") as data:
        settings = Settings(data_dir=data)
        conn = connect(settings.cache_db)
        create_schema(conn)
        index, bodies = CacheIndex(conn), BodyStore(settings.cache_dir)
        for i in range(20):
            put(index, bodies, f"/o{i}", body=b"x" * 1000)
        janitor = Janitor(
            index, Applier(conn, bodies), bodies, 0, lambda _seq: None, settings.stats_dir
        )
        # An empty WAL: the eviction's delete needs pages the disk no longer has.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        fill_up(data / "ballast")

        asyncio.run(janitor.step())  # over its size limit: eviction is due, and fails
        asyncio.run(janitor.step())
        assert janitor.writes.counts["janitor"] == 2
        assert janitor.writes.counts["stats"] == 2  # janitor.json could not be written
        assert index.count() == 20 and janitor.evicted == 0

        (data / "ballast").unlink()
        asyncio.run(janitor.step())
        assert index.count() == 0 and janitor.evicted == 20
        stats = NodeStats(settings)
        assert stats.evictions() == 20
        assert stats.totals().write_failures == {"janitor": 2, "stats": 2}
        conn.close()
