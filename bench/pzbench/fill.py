# ruff: noqa: RUF002
"""The shortcut for S4/S7: a pullzone cache index holding a million objects in seconds.

Warming a million objects through the edge would take far longer than the whole bench.
Instead, with the server stopped, one object that pullzone really fetched and stored is
copied N−1 times straight into `cache.db`: same meta (status, headers, times), same body
layout, new ids, and the keys the edge itself computes (`pullzone.cache.key`) for
`/big/<i>.bin`. The INSERT is `CacheIndex.insert`'s own statement, in one transaction,
with the four secondary indexes dropped first and rebuilt afterwards by the project's
`create_schema` (sorted bulk build: ~15 s for 1M rows instead of ~90 s row by row).
The size trigger keeps `total_size` right. Body files exist (hard links to the real
object's file, so the disk cost is nil) only for the first `linked` objects — the ones
S7's HIT workload requests; the other rows are never read by the edge in this bench.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from pullzone.cache.bodies import BodyStore
from pullzone.cache.index import create_schema
from pullzone.cache.key import cache_key, key_hash
from pullzone.config import Settings
from pullzone.sqlite import connect, transaction

SECONDARY_INDEXES = ("objects_key", "objects_path", "objects_lru", "objects_age")
MAX_LINKS = 60_000  # ext4 allows 65,000 links to one inode


def big_path(i: int) -> str:
    return f"/big/{i}.bin"


def fill(data_dir: Path, zone_id: int, use_query: bool, n: int, linked: int) -> dict[str, float]:
    """Grow the index of the (stopped) server in `data_dir` to `n` objects of zone
    `zone_id`, copying the one object it holds; returns timings."""
    settings = Settings(data_dir=data_dir)
    conn = connect(settings.cache_db)
    conn.execute("PRAGMA cache_size = -1000000")  # 1 GB page cache for the bulk load
    rows = conn.execute("SELECT * FROM objects WHERE zone_id = ?", (zone_id,)).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"expected 1 template object in zone {zone_id}, found {len(rows)}")
    tpl = rows[0]
    bodies = BodyStore(settings.cache_dir)
    tpl_file = bodies.object_path(tpl["id"])
    if not tpl_file.exists():
        raise RuntimeError(f"template body {tpl_file} is missing")

    t0 = time.perf_counter()
    now = time.time()
    new_rows = []
    for i in range(1, n):
        path = big_path(i)
        object_id = hashlib.blake2b(f"bench-{i}".encode(), digest_size=16).hexdigest()
        new_rows.append(
            (
                object_id,
                key_hash(cache_key(zone_id, path, "", use_query)),
                zone_id,
                path,
                "",
                tpl["meta"],
                tpl["body_offset"],
                tpl["size"],
                tpl["stored_seq"],
                0,
                now,
            )
        )
    linked_ids = [r[0] for r in new_rows[: max(0, linked - 1)]]
    new_rows.sort()  # primary-key order: appends, not random B-tree inserts
    t_gen = time.perf_counter() - t0

    t1 = time.perf_counter()
    for name in SECONDARY_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    with transaction(conn):
        conn.executemany(
            "INSERT INTO objects (id, key_hash, zone_id, path, query, meta, body_offset,"
            " size, stored_seq, stale, last_access) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            new_rows,
        )
    t_insert = time.perf_counter() - t1
    t2 = time.perf_counter()
    create_schema(conn)  # rebuilds the secondary indexes
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    t_index = time.perf_counter() - t2

    t3 = time.perf_counter()
    templates = [tpl_file]
    for n_linked, object_id in enumerate(linked_ids, start=1):
        if n_linked % MAX_LINKS == 0:  # a fresh copy of the template to link to
            copy = tpl_file.with_name(tpl_file.name + f".tpl{n_linked}")
            copy.write_bytes(tpl_file.read_bytes())
            templates.append(copy)
        target = bodies.object_path(object_id)
        target.parent.mkdir(exist_ok=True)
        os.link(templates[-1], target)
    for extra in templates[1:]:
        extra.unlink()  # the links keep the bytes; no orphan file for the janitor
    t_link = time.perf_counter() - t3
    return {
        "objects": n,
        "body_files_linked": len(linked_ids) + 1,
        "generate_s": round(t_gen, 2),
        "insert_s": round(t_insert, 2),
        "index_build_s": round(t_index, 2),
        "link_s": round(t_link, 2),
    }
