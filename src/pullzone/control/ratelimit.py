"""The per-key rate limit of the management API (README, Purge): a token bucket per key id.

Each key starts with `burst` tokens; every call takes one; tokens come back at `rate` per
second, up to `burst`. A call that finds no token is refused (429) and told how long to
wait for the next one. A refused call takes nothing, so a client that waits as told gets
through. `rate` 0 switches the limit off.

Pure: no I/O, no sleeping; time comes from `clock` (`time.monotonic` unless a test gives
its own). The buckets live in the API process's memory: a restart refills them, and each
API node of a cluster limits the calls it answers itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

MAX_BUCKETS = 4096  # above this many keys seen, buckets that are full again are dropped
_EPSILON = 1e-9  # floating-point slack: a bucket refilled to 0.9999999999 holds a token


class RateLimiter:
    """At most `rate` calls per second per key on average, `burst` at once."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"rate must be a number of requests per second >= 0, not {rate!r}")
        if rate > 0 and burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id: (tokens, as of when)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _tokens(self, key_id: str, now: float) -> tuple[float, float]:
        """(tokens, as of when) of the key's bucket, refilled up to `now`."""
        tokens, since = self._buckets.get(key_id, (float(self.burst), now))
        elapsed = max(0.0, now - since)  # a clock that went back refills nothing
        return min(float(self.burst), tokens + elapsed * self.rate), max(since, now)

    def take(self, key_id: str) -> float | None:
        """Take a token for one call of `key_id`: None when it may go ahead, else the
        seconds until a token is back (nothing is taken then)."""
        if not self.enabled:
            return None
        now = self._clock()
        tokens, since = self._tokens(key_id, now)
        if tokens >= 1 - _EPSILON:
            self._buckets[key_id] = (max(0.0, tokens - 1), since)
            if len(self._buckets) > MAX_BUCKETS:
                self._drop_full(now)
            return None
        self._buckets[key_id] = (tokens, since)
        return (1 - tokens) / self.rate

    def forget(self, key_id: str) -> None:
        """Drop a key's bucket (the key was revoked)."""
        self._buckets.pop(key_id, None)

    def _drop_full(self, now: float) -> None:
        """Drop buckets that are full again: a full bucket is what a new one would be."""
        full = [k for k in self._buckets if self._tokens(k, now)[0] >= self.burst - _EPSILON]
        for key_id in full:
            del self._buckets[key_id]

    def __len__(self) -> int:
        """How many buckets are kept (keys seen and not yet full again)."""
        return len(self._buckets)
