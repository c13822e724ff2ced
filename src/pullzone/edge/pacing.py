"""The zone's `bwlimit`: each response written at most at `rate` kilobits per second, from
its first byte (policy "0") or after `rateafter` kilobytes at full speed (policy "1").

A `Paced` exchange stands between the response writers (deliver.py) and the connection:
what they write is held, and let out at the rate whenever they wait for the client
(`drain`) and once the response is written (`run`). The writers already write at most
one chunk (256 KiB) before each drain, so little is held; the waits are the loop's
timers, so other connections of the worker go on meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from pullzone.edge.http import Exchange
from pullzone.zones.blocks import BwLimit

# Bytes let out at once: a twentieth of a second's worth (at least one TCP segment), so
# the rate holds over any stretch longer than that.
SLICES_PER_SECOND = 20
MIN_SLICE = 1460


@dataclass(frozen=True, slots=True)
class Pace:
    """A zone's bwlimit in bytes: `rate` per second, after `free` bytes at full speed."""

    rate: int
    free: int

    @property
    def slice(self) -> int:
        return max(MIN_SLICE, self.rate // SLICES_PER_SECOND)


def pace_of(block: BwLimit) -> Pace | None:
    """The pace a zone's bwlimit block asks for; None when it asks for none. A kilobit is
    1024 bits and a kilobyte 1024 bytes (5centscdn's and nginx's `limit_rate` units)."""
    if not block.enabled or block.rate <= 0:
        return None
    free = block.rateafter * 1024 if block.policy == "1" else 0
    return Pace(rate=block.rate * 1024 // 8, free=free)


def wait_for(pace: Pace, elapsed: float, released: int, wanted: int) -> float:
    """Seconds to wait before `wanted` more bytes may go, `released` having gone in the
    `elapsed` seconds since the response began (0: now)."""
    allowed = pace.free + pace.rate * elapsed - released
    return 0.0 if allowed >= wanted else (wanted - allowed) / pace.rate


class Paced:
    """An `http.Exchange` whose writes go out at `pace` (see the module's docstring)."""

    def __init__(self, conn: Exchange, pace: Pace) -> None:
        self._conn = conn
        self._pace = pace
        self._held = bytearray()
        self._released = 0
        self._began = time.monotonic()

    # The connection's own state, read and set through this exchange.
    @property
    def close_after(self) -> bool:
        return self._conn.close_after

    @close_after.setter
    def close_after(self, value: bool) -> None:
        self._conn.close_after = value

    @property
    def xcache(self) -> str:
        return self._conn.xcache

    @xcache.setter
    def xcache(self, value: str) -> None:
        self._conn.xcache = value

    @property
    def zone_id(self) -> int:
        return self._conn.zone_id

    @zone_id.setter
    def zone_id(self, value: int) -> None:
        self._conn.zone_id = value

    @property
    def sent(self) -> int:
        return self._conn.sent + len(self._held)

    @sent.setter
    def sent(self, value: int) -> None:
        self._conn.sent = value

    @property
    def peer(self) -> str:
        return self._conn.peer

    @peer.setter
    def peer(self, value: str) -> None:
        self._conn.peer = value

    @property
    def client(self) -> str:
        return self._conn.client

    @client.setter
    def client(self, value: str) -> None:
        self._conn.client = value

    @property
    def scheme(self) -> str:
        return self._conn.scheme

    @property
    def label(self) -> str:
        return self._conn.label

    @property
    def closed(self) -> bool:
        return self._conn.closed

    @property
    def status(self) -> int:
        return self._conn.status

    def elapsed(self) -> float:
        return self._conn.elapsed()

    def write(self, data: bytes) -> None:
        if not self._conn.closed:
            self._held += data

    def interim(self, status: int, headers: list[tuple[str, str]]) -> None:
        if not self._held:  # else the final head is held here, and the interim too late
            self._conn.interim(status, headers)

    async def drain(self) -> None:
        """Let out what is held, at the pace, as the client takes it."""
        pace = self._pace
        held = self._held
        while held:
            wanted = min(len(held), pace.slice)
            delay = wait_for(pace, time.monotonic() - self._began, self._released, wanted)
            if delay > 0:
                await asyncio.sleep(delay)
            piece = bytes(held[:wanted])
            del held[:wanted]
            self._released += wanted
            self._conn.write(piece)
            await self._conn.drain()
        if self._conn.closed:
            raise ConnectionResetError("client went away")

    async def run(self, pending: Awaitable[None] | None) -> None:
        """The response `pending` writes (None: already written), then what is held."""
        if pending is not None:
            await pending
        await self.drain()
