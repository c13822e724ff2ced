"""When a call is tried again, and after how long: pure decisions, no sleeping, no I/O.

`Client` and `AsyncClient` send an attempt, hand what came back (a response or a transport
error) to `Attempts.after`, and either get the answer, an `ApiError` to raise, or the
seconds to sleep before the next attempt. Only the sleeping and the sending differ
between the two clients.

What is retried (at most `RetryPolicy.max_retries` times):

- 429 (rate limited), for every call: the API refused it before doing anything.
- 503, for every call: the API did nothing (for a purge: "nothing was purged").
- 500, 502, 504, for idempotent calls: every call but creating a zone or a key. A purge is
  idempotent in effect (purging twice leaves the cache as purging once).
- No answer: when the connection could not be made, for every call (nothing was sent);
  when it broke or timed out after the request went out, for idempotent calls only.

The wait is the answer's `Retry-After` (seconds or an HTTP date) when it has one; more than
`max_wait` seconds there is given up at once, with the 429's own message. Without it, an
exponential backoff from `backoff` seconds (doubling up to `max_backoff`), each wait
between half and all of that step (jitter, so that many clients do not come back at once).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from pullzone.client._requests import Answer, ApiError, Call, read_answer, unreachable

ALWAYS_RETRIED = frozenset({429, 503})
RETRIED_WHEN_IDEMPOTENT = frozenset({500, 502, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a call is tried again (see the module's docstring)."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_wait: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError("max_retries must be a whole number")
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 (no retries) or more")
        for name in ("backoff", "max_backoff", "max_wait"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")


def retry_after(value: str | None, now: float) -> float | None:
    """The seconds a `Retry-After` header asks to wait (a number of seconds or an HTTP
    date, `now` being the current time since the epoch); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, float(when.timestamp()) - now)


def backoff(policy: RetryPolicy, retries_done: int, jitter: float) -> float:
    """The wait before retry number `retries_done + 1` without a Retry-After; `jitter` in
    [0, 1) picks where between half and all of the step it falls."""
    step = min(policy.max_backoff, policy.backoff * 2.0 ** min(retries_done, 62))
    return step * (0.5 + jitter / 2)


def retry_delay(
    policy: RetryPolicy,
    *,
    retries_done: int,
    status: int | None,
    idempotent: bool,
    sent: bool = True,
    retry_after_header: str | None = None,
    now: float = 0.0,
    jitter: float = 0.0,
) -> float | None:
    """Seconds to wait before trying again, or None to give up.

    `status` is the answer's HTTP status, None when no answer came; `sent` (for no answer)
    whether the request may have reached the API (False: the connection was never made).
    """
    if retries_done >= policy.max_retries:
        return None
    if status is None:
        if sent and not idempotent:
            return None
        return backoff(policy, retries_done, jitter)
    if status not in ALWAYS_RETRIED and not (idempotent and status in RETRIED_WHEN_IDEMPOTENT):
        return None
    asked = retry_after(retry_after_header, now)
    if asked is None:
        return backoff(policy, retries_done, jitter)
    return asked if asked <= policy.max_wait else None


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Attempts:
    """The attempts of one call: what each outcome means (answer, error, or wait)."""

    def __init__(
        self,
        call: Call[Any],
        policy: RetryPolicy,
        base_url: str,
        timeout: float,
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.call = call
        self.policy = policy
        self.base_url = base_url
        self.timeout = timeout
        self.clock = clock
        self.jitter = jitter
        self.retries = 0

    def after(self, outcome: httpx.Response | httpx.TransportError) -> Answer | float:
        """The answer of a successful attempt, else the seconds to wait before the next
        one; raises the ApiError when there is to be no next one."""
        if isinstance(outcome, httpx.TransportError):
            error = unreachable(self.base_url, self.timeout, outcome)
            wait = self._delay(None, sent=not isinstance(outcome, _NOT_SENT))
        else:
            try:
                return read_answer(outcome.status_code, outcome.content)
            except ApiError as exc:
                error = exc
            wait = self._delay(
                outcome.status_code, retry_after_header=outcome.headers.get("Retry-After")
            )
        if wait is None:
            raise self._final(error)
        self.retries += 1
        return wait

    def _delay(
        self, status: int | None, *, sent: bool = True, retry_after_header: str | None = None
    ) -> float | None:
        return retry_delay(
            self.policy,
            retries_done=self.retries,
            status=status,
            idempotent=self.call.idempotent,
            sent=sent,
            retry_after_header=retry_after_header,
            now=self.clock(),
            jitter=self.jitter(),
        )

    def _final(self, error: ApiError) -> ApiError:
        attempts = self.retries + 1
        if attempts == 1:
            return error
        message = error.message
        if error.status == 0:
            message = f"{message} ({attempts} attempts)"
        return ApiError(error.status, message, attempts=attempts)
