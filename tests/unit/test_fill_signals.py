"""How a fill's readers learn it moved on (edge/progress.py), on a real event loop."""

from __future__ import annotations

import asyncio

from pullzone.edge.progress import POLL_INTERVAL, FillSignals


async def test_a_write_wakes_every_reader_of_its_fill_and_no_other() -> None:
    signals = FillSignals()
    readers = [asyncio.ensure_future(signals.wait("a")) for _ in range(3)]
    other = asyncio.ensure_future(signals.wait("b"))
    await asyncio.sleep(0)
    signals.wake("a")
    await asyncio.sleep(0)
    assert all(r.done() for r in readers) and not other.done()
    other.cancel()


async def test_a_reader_whose_client_left_leaves_the_others_waiting() -> None:
    signals = FillSignals()
    gone, staying = (asyncio.ensure_future(signals.wait("a")) for _ in range(2))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert gone.cancelled() and not staying.done()
    signals.wake("a")
    await staying


async def test_one_poll_tick_ends_every_wait_within_the_interval() -> None:
    """Readers of another process's fill look again at the tick, never later: one timer
    for all of them, however many waits began."""
    signals = FillSignals()
    loop = asyncio.get_running_loop()
    waits = [asyncio.ensure_future(signals.wait(f"fill-{n}")) for n in range(100)]
    await asyncio.sleep(0)  # every wait has begun
    tick = signals._tick
    assert tick is not None and tick.when() <= loop.time() + POLL_INTERVAL  # not run yet
    assert not any(w.done() for w in waits)
    await asyncio.gather(*waits)  # the one tick ended them all
    assert signals._tick is None
