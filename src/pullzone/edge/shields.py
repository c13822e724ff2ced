"""The cluster's origin shields as an edge worker sees them (docs/cluster.md, Origin shield).

The node's cluster process writes the live shields (`--role shield` nodes heard from in
the last LIVE_WITHIN seconds, with their edge addresses) to `run/shields.json` whenever
the set changes; each worker reads the file again when it changed, at most once a second.

Which shield is asked for an object is rendezvous hashing (highest random weight, Thaler
and Ravishankar): every edge ranks the shields by a hash of (shield, object) and asks the
first, so all edges send an object's misses to the same shield, and a shield that leaves
moves only its own objects (to each object's second choice). A shield that failed is
skipped by this worker for DOWN_FOR seconds; with none left, the origin is asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pullzone.edge.internal import INTERNAL_HEADER

# How long a worker skips a shield that refused its connection or did not answer.
DOWN_FOR = 10.0
# How long a worker waits to connect to a shield before it asks the next one (loopback
# and a data centre's network connect in well under a millisecond; a shield that is gone
# refuses at once, one whose machine is gone costs this).
CONNECT_TIMEOUT = 0.5
# A shield whose answer has not begun after WATCH_EVERY seconds is asked whether it still
# answers (`alive`), and again every WATCH_EVERY seconds: one that does not within
# ALIVE_WITHIN has stalled (a stopped process still accepts connections: the kernel
# does), and the request goes to the next shield. One that does is waiting for its
# origin, which may take as long as --origin-timeout.
WATCH_EVERY = 1.0
ALIVE_WITHIN = 1.0
RELOAD_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class ShieldNode:
    node: str  # its --node-id
    address: str  # its edge listener, HOST:PORT


def rank(shields: Sequence[ShieldNode], key: str) -> list[ShieldNode]:
    """The shields in the order an object with `key` asks them (rendezvous hashing)."""

    def weight(shield: ShieldNode) -> bytes:
        return hashlib.blake2b(f"{shield.node}\0{key}".encode(), digest_size=8).digest()

    return sorted(shields, key=weight, reverse=True)


async def alive(shield: ShieldNode, token: str) -> bool:
    """Whether the shield's edge answers `OPTIONS *` (RFC 9110 §9.3.7: about the server
    itself) within ALIVE_WITHIN, on a connection of its own."""
    host, _, port = shield.address.rpartition(":")
    writer = None
    try:
        async with asyncio.timeout(ALIVE_WITHIN):
            reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(
                f"OPTIONS * HTTP/1.1\r\nHost: {shield.address}\r\n"
                f"{INTERNAL_HEADER}: {token}\r\nConnection: close\r\n\r\n".encode()
            )
            return (await reader.readline()).startswith(b"HTTP/1.1 ")
    except (OSError, TimeoutError, ValueError):
        return False
    finally:
        if writer is not None:
            writer.close()


def write(path: Path, shields: Sequence[ShieldNode]) -> None:
    """Replace the shields file atomically (workers never read half of one)."""
    body = json.dumps({"shields": [{"node": s.node, "address": s.address} for s in shields]})
    part = path.with_suffix(".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_text(body)
    os.replace(part, path)


def read(path: Path) -> tuple[ShieldNode, ...]:
    """The shields in the file; none when it is missing or not what `write` makes."""
    try:
        record = json.loads(path.read_text())
        return tuple(ShieldNode(str(s["node"]), str(s["address"])) for s in record["shields"])
    except (OSError, ValueError, KeyError, TypeError):
        return ()


class Shields:
    """One worker's view of the shields file, and of which shields failed it lately."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: tuple[ShieldNode, ...] = ()
        self._mtime: int | None = None
        self._checked = -RELOAD_EVERY
        self._down: dict[str, float] = {}  # node → monotonic time it may be asked again
        # node → when the last liveness check began, and the check: one serves every fill
        # that waits on the shield in the next WATCH_EVERY seconds.
        self._checks: dict[str, tuple[float, asyncio.Future[bool]]] = {}

    def order(self, key: str) -> list[ShieldNode]:
        """The shields to ask for `key`, best first, less those down."""
        now = time.monotonic()
        if now - self._checked >= RELOAD_EVERY:
            self._checked = now
            self._reload()
        if not self.known:
            return []
        return [s for s in rank(self.known, key) if self._down.get(s.node, 0.0) <= now]

    async def answering(self, shield: ShieldNode, token: str) -> bool:
        """Whether `shield` still answers (`alive`), checked at most once per WATCH_EVERY
        however many fills wait on it (an overloaded shield is not flooded with checks)."""
        now = time.monotonic()
        started, check = self._checks.get(shield.node, (0.0, None))
        if check is None or now - started >= WATCH_EVERY:
            check = asyncio.ensure_future(alive(shield, token))
            self._checks[shield.node] = (now, check)
        return await asyncio.shield(check)

    def failed(self, shield: ShieldNode) -> None:
        self._down[shield.node] = time.monotonic() + DOWN_FOR

    def _reload(self) -> None:
        mtime = None
        with contextlib.suppress(OSError):
            mtime = self.path.stat().st_mtime_ns
        if mtime != self._mtime:
            self._mtime = mtime
            self.known = read(self.path) if mtime is not None else ()
