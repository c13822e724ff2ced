"""The purge guarantee under load, for any client: after a purge's answer, no request sent
later is answered with what the purge removed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx

Purge = Callable[[int], httpx.Response]  # purge, the origin now serving version n


def hammer_through_purges(
    client: Callable[[], AbstractContextManager[httpx.Client]],
    url: str,
    purge: Purge,
    *,
    connections: int,
    purges: int,
) -> tuple[int, int]:
    """`connections` clients GET `url` (whose body is `v<n>`) while `purge(n)` runs for n
    from 2; every answer to a request sent after purge n's answer must be v<n> or newer.
    Returns (requests checked, purges)."""
    stop = threading.Event()
    results: list[tuple[float, bytes]] = []
    lock = threading.Lock()

    def hammer() -> None:
        with client() as session:
            while not stop.is_set():
                sent = time.monotonic()
                body = session.get(url).content
                with lock:
                    results.append((sent, body))

    threads = [threading.Thread(target=hammer) for _ in range(connections)]
    for t in threads:
        t.start()
    answered: list[tuple[float, int]] = []
    try:
        for n in range(2, 2 + purges):
            time.sleep(0.05)
            assert purge(n).status_code == 200
            answered.append((time.monotonic(), n))
    finally:
        stop.set()
        for t in threads:
            t.join()
    for sent, body in results:
        newest = max((n for at, n in answered if at < sent), default=1)
        assert int(body[1:]) >= newest, (sent, body, newest)
    return len(results), len(answered)
