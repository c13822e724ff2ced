"""How the readers of a fill learn that it moved on: at once in the leader's process, by
polling in the others (a fill is shared by every worker of the node, bodies.py)."""

from __future__ import annotations

import asyncio

POLL_INTERVAL = 0.005  # readers in other processes look for progress this often


class FillSignals:
    def __init__(self) -> None:
        # Each waiting reader's own future, by fill: resolved by the leader's next write
        # (`wake`) or by the poll tick, whichever comes first. A bare future wakes its
        # reader on the loop's next turn (asyncio.wait_for's task took three: the first
        # chunks of a fast origin were all copied before a reader sent one), and one of
        # its own is cancelled alone when its client leaves. One tick serves every
        # waiting reader: no timer per wait.
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._tick: asyncio.TimerHandle | None = None

    async def wait(self, key_hash: str) -> None:
        """Until the fill of `key_hash` progresses (in this process) or the next poll
        tick, at most POLL_INTERVAL away."""
        loop = asyncio.get_running_loop()
        moved: asyncio.Future[None] = loop.create_future()
        self._waiting.setdefault(key_hash, []).append(moved)
        if self._tick is None:
            self._tick = loop.call_later(POLL_INTERVAL, self._poll)
        await moved

    def _poll(self) -> None:
        """The poll interval is up: readers look for themselves (another process's fill)."""
        self._tick = None
        waiting, self._waiting = self._waiting, {}
        for readers in waiting.values():
            _resolve(readers)

    def wake(self, key_hash: str) -> None:
        _resolve(self._waiting.pop(key_hash, ()))


def _resolve(readers: list[asyncio.Future[None]] | tuple[()]) -> None:
    for moved in readers:
        if not moved.done():
            moved.set_result(None)
