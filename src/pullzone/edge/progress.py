"""How the readers of a fill learn that it moved on: at once in the leader's process, by
polling in the others (a fill is shared by every worker of the node, bodies.py)."""

from __future__ import annotations

import asyncio
import contextlib

POLL_INTERVAL = 0.005  # readers in other processes look for progress this often


class FillSignals:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    async def wait(self, key_hash: str) -> None:
        """Until the fill of `key_hash` progresses (in this process) or a poll interval."""
        event = self._events.get(key_hash)
        if event is None:
            event = self._events[key_hash] = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), POLL_INTERVAL)

    def wake(self, key_hash: str) -> None:
        event = self._events.pop(key_hash, None)
        if event is not None:
            event.set()
