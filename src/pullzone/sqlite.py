"""SQLite connections as every part of pullzone opens them: WAL, a busy timeout, autocommit."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_MODE = 0o600


def make_private(path: Path | str) -> None:
    """Create the database file readable by its owner only, and make it and its WAL and
    shared-memory files so if they exist. SQLite creates its -wal and -shm files with the
    database file's permissions, so a private database stays private."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", PRIVATE_MODE)


def connect(
    path: Path | str, *, readonly: bool = False, private: bool = False
) -> sqlite3.Connection:
    """A connection in autocommit mode; use `transaction()` for atomic groups of writes.
    `private`: the database holds secrets (control.db: private keys), see `make_private`."""
    if private:
        make_private(path)
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
    # WAL with synchronous=NORMAL survives any process crash; only a power loss may
    # drop the last transactions, never corrupt the database.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
