"""Where the cluster keeps its snapshots (bus/snapshots.py): a JetStream Object Store.

An Object Store rather than a KV bucket: a snapshot grows with the zones and certificates
(each certificate carries its chain and key), a KV value must fit in one NATS message
(1 MB by default, max_payload), an object is chunked (128 KB) and checked against its
SHA-256 digest when read. Each object is named after the stream sequence
its snapshot is consistent with, so two nodes writing the snapshot of one sequence write
the same name, and the newest is the one with the highest number.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime

import nats.errors
import nats.js.errors
from nats.js.object_store import ObjectStore

BUCKET = "pullzone_snapshots"
KEEP = 3  # snapshots kept: the newest and two to fall back on
# What reading or writing the store raises: a NATS error (a digest mismatch among them),
# a timeout, a socket's.
STORE_ERRORS: tuple[type[Exception], ...] = (nats.errors.Error, asyncio.TimeoutError, OSError)
_NAME = re.compile(r"^snapshot-([0-9]{20})$")


@dataclass(frozen=True, slots=True)
class Stored:
    name: str
    seq: int
    size: int
    at: float  # when it was written (unix time; 0 when not known: older than any)


def _unix(mtime: str | None) -> float:
    try:
        return datetime.fromisoformat(mtime or "").timestamp()
    except ValueError:  # e.g. nanoseconds, as Go clients write them
        return 0.0


def name_of(seq: int) -> str:
    return f"snapshot-{seq:020d}"


class SnapshotStore:
    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    async def list(self) -> list[Stored]:
        """The stored snapshots, newest first."""
        try:
            infos = await self._store.list(ignore_deletes=True)
        except nats.js.errors.NotFoundError:
            return []
        found = []
        for info in infos:
            match = _NAME.match(info.name)
            if match is not None and not info.deleted:
                size, at = int(info.size or 0), _unix(info.mtime)
                found.append(Stored(info.name, int(match.group(1)), size, at))
        return sorted(found, key=lambda s: s.seq, reverse=True)

    async def put(self, seq: int, data: bytes) -> None:
        await self._store.put(name_of(seq), data)

    async def get(self, stored: Stored) -> bytes:
        """The object's bytes (nats-py checks their digest: a mismatch raises)."""
        result = await self._store.get(stored.name)
        return bytes(result.data or b"")

    async def prune(self, keep: int = KEEP) -> int:
        """Delete all but the newest `keep` snapshots; returns how many went."""
        old = (await self.list())[keep:]
        for stored in old:
            await self._store.delete(stored.name)
        return len(old)
