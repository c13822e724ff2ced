"""How the readers of a fill learn that it moved on: at once in the leader's process, by
polling in the others (a fill is shared by every worker of the node, bodies.py)."""

from __future__ import annotations

import asyncio

POLL_INTERVAL = 0.005  # readers in other processes look for progress this often


def _resolve(moved: asyncio.Future[None]) -> None:
    if not moved.done():
        moved.set_result(None)


class FillSignals:
    def __init__(self) -> None:
        # One future per fill that readers wait on, resolved by the leader's next write
        # or at the poll interval, whichever comes first. A bare future wakes its readers
        # on the loop's next turn (asyncio.wait_for's task took three: the first chunks
        # of a fast origin were all copied before a reader sent one).
        self._moved: dict[str, asyncio.Future[None]] = {}

    async def wait(self, key_hash: str) -> None:
        """Until the fill of `key_hash` progresses (in this process) or a poll interval."""
        moved = self._moved.get(key_hash)
        if moved is None or moved.done():
            loop = asyncio.get_running_loop()
            moved = self._moved[key_hash] = loop.create_future()
            loop.call_later(POLL_INTERVAL, self._expire, key_hash, moved)
        # Shielded: a reader cancelled (its client left) must not cancel the others' wait.
        await asyncio.shield(moved)

    def _expire(self, key_hash: str, moved: asyncio.Future[None]) -> None:
        """The poll interval is up: readers look for themselves (another process's fill)."""
        if self._moved.get(key_hash) is moved:
            del self._moved[key_hash]
        _resolve(moved)

    def wake(self, key_hash: str) -> None:
        moved = self._moved.pop(key_hash, None)
        if moved is not None:
            _resolve(moved)
