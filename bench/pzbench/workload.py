"""S15's object set (sizes per id, the path list wrk draws from, the byte budget) and the
readers of what each cache holds (S15: pullzone's index, nginx's cache dir, varnishstat)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

KIB = 1024
MAX_KIB = 100  # sizes are 1..100 KiB


def size_kib(object_id: int) -> int:
    """The size of object `object_id`, in whole KiB from 1 to 100, log-uniform: a hash of
    the id gives u in [0, 1), the size is floor(101 ** u). The same id always has the same
    size; about half the objects are under 10 KiB, the mean is ~21 KiB."""
    digest = hashlib.blake2b(b"%d" % object_id, digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    return min(MAX_KIB, int((MAX_KIB + 1) ** u))


def sizes(objects: int) -> list[int]:
    """KiB of every object, by id (0..objects-1); id k-1 is the k-th most popular."""
    return [size_kib(i) for i in range(objects)]


def write_origin_files(root: Path) -> None:
    """z/<K>k.bin for K = 1..100: the origin serves /z/<K>k/<id>.bin from it
    (configs/origin-nginx.conf)."""
    (root / "z").mkdir(exist_ok=True)
    block = os.urandom(MAX_KIB * KIB)
    for k in range(1, MAX_KIB + 1):
        (root / "z" / f"{k}k.bin").write_bytes(block[: k * KIB])


def write_paths(pathfile: Path, prefix: str, kib: list[int]) -> None:
    """One path per line, in popularity order (line k = rank k): prefix/z/<K>k/<id>.bin."""
    with open(pathfile, "w") as f:
        f.writelines(f"{prefix}z/{k}k/{i}.bin\n" for i, k in enumerate(kib))


class IndexSampler:
    """Reads pullzone's cache.db (read-only, as the API does) every `every` seconds in a
    thread: the largest stored total and the largest stored + reserved bytes seen."""

    def __init__(self, cache_db: Path, every: float = 2.0) -> None:
        self.cache_db = cache_db
        self.every = every
        self.max_stored = 0
        self.max_used = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> IndexSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                stored, used = index_bytes(self.cache_db)
            except sqlite3.Error:
                continue
            self.max_stored = max(self.max_stored, stored)
            self.max_used = max(self.max_used, used)
            self.samples += 1


def index_bytes(cache_db: Path) -> tuple[int, int]:
    """(stored bytes, stored + reserved by fills in progress) from pullzone's index."""
    conn = sqlite3.connect(f"file:{cache_db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT value FROM cache_meta WHERE name = 'total_size'").fetchone()
        fills = conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM fills").fetchone()
    finally:
        conn.close()
    stored = int(row[0] or 0) if row else 0
    return stored, stored + int(fills[0])


def dir_bytes(path: Path) -> tuple[int, int, int]:
    """(files, apparent bytes, bytes of allocated blocks) under `path`: nginx's cache, whose
    max_size counts allocated blocks (header and body in one file per object)."""
    files = size = blocks = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue
            files += 1
            size += st.st_size
            blocks += st.st_blocks * 512
    return files, size, blocks


def varnish_counters(workdir: Path, names: tuple[str, ...]) -> dict[str, int]:
    """`varnishstat -1` counters of the varnishd whose `-n` is `workdir`."""
    args = ["varnishstat", "-n", str(workdir), "-1"]
    for name in names:
        args += ["-f", name]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    out: dict[str, int] = {}
    for line in r.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in names:
            out[fields[0]] = int(fields[1])
    return out
