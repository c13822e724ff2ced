"""Prefetch (README, Purge and prefetch): a node stores a zone's objects before anyone
asks for them, by asking its own edge, as a visitor would, for each one.

Each object goes through the edge's usual lookup and fill (edge/fills.py): one origin
request per object for the node however many workers there are, none for an object
already stored and fresh, and the same purge guarantees as any fill (a purge applied
while an object is fetched leaves it stale or gone, cache/index.py). The request carries
the node's secret (edge/internal.py), so the zone's access blocks, `bwlimit` and
`ssl.redirect`, which are for visitors, do not stand in its way.

A node applies events in order, so a prefetch holds the events behind it until it is
done: it is bounded (PREFETCH_DEADLINE), and an event older than that, replayed by a node
that was away, is not fetched at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp

from pullzone.bus.events import Event, Prefetch
from pullzone.config import Settings
from pullzone.edge.internal import INTERNAL_HEADER

log = logging.getLogger("pullzone.prefetch")

# Seconds a prefetch may take on a node, whatever is left then (the events behind it wait
# meanwhile; JetStream redelivers what is not acknowledged within 30 s).
PREFETCH_DEADLINE = 15.0
PREFETCH_CONCURRENCY = 16  # objects asked at once
# What a prefetch asks with: the codings browsers accept, so that an origin that varies on
# Accept-Encoding has the variant most visitors get stored (spec/vary.py normalises it).
ACCEPT_ENCODING = "gzip, deflate, br"


@dataclass(frozen=True, slots=True)
class Fetched:
    stored: int  # answered 2xx or 3xx: stored when the response is storable
    failed: int  # an error status, or no answer within the deadline


def own_edge(settings: Settings) -> str:
    """The base URL of this node's plain edge listener, as the node reaches it."""
    host = settings.edge_host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.edge_port}"


class Prefetcher:
    def __init__(self, settings: Settings) -> None:
        self.base = own_edge(settings)
        self.token = settings.internal_token

    async def run(self, event: Event) -> Fetched | None:
        """Fetch the objects of a prefetch event through this node's edge; None when the
        event is too old to be worth it (a node catching up)."""
        if time.time() - event.at > PREFETCH_DEADLINE:
            return None
        prefetch = Prefetch.from_payload(event.payload)
        headers = {
            "Host": prefetch.host,
            INTERNAL_HEADER: self.token,
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": "pullzone-prefetch",
        }
        limit = asyncio.Semaphore(PREFETCH_CONCURRENCY)
        timeout = aiohttp.ClientTimeout(total=None)  # the deadline below is for them all
        async with aiohttp.ClientSession(
            timeout=timeout, auto_decompress=False, skip_auto_headers=("Accept-Encoding",)
        ) as session:

            async def one(target: str) -> bool:
                async with limit:
                    try:
                        async with session.get(
                            self.base + target, headers=headers, allow_redirects=False
                        ) as response:
                            async for _ in response.content.iter_chunked(256 * 1024):
                                pass  # read whole: the fill is complete when it ends
                            return response.status < 400
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        log.warning("prefetch of %s%s failed: %r", prefetch.host, target, exc)
                        return False

            tasks = [asyncio.ensure_future(one(target)) for target in prefetch.files]
            try:
                async with asyncio.timeout(PREFETCH_DEADLINE):  # for all of them
                    await asyncio.gather(*tasks)
            except TimeoutError:
                log.warning("prefetch %d: not done within %.0f s", event.seq, PREFETCH_DEADLINE)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        stored = sum(1 for t in tasks if not t.cancelled() and t.result())
        return Fetched(stored, len(tasks) - stored)
