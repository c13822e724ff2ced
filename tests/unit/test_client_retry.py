"""When the SDK tries a call again, and after how long: the pure decisions both clients share."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import httpx
import pytest

from pullzone.client import ApiError, RetryPolicy, _requests
from pullzone.client._requests import Answer
from pullzone.client._retry import Attempts, backoff, retry_after, retry_delay

POLICY = RetryPolicy(max_retries=3, backoff=0.5, max_backoff=8.0, max_wait=60.0)
NOW = 1_700_000_000.0


def delay(status: int | None, policy: RetryPolicy = POLICY, **given: Any) -> float | None:
    decision: dict[str, Any] = {"retries_done": 0, "idempotent": True, "now": NOW, **given}
    return retry_delay(policy, status=status, **decision)


# --- which answers are retried ---------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limited_or_unavailable_is_retried_for_every_call(status: int) -> None:
    assert delay(status) == 0.25
    assert delay(status, idempotent=False) == 0.25


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_are_retried_for_idempotent_calls_only(status: int) -> None:
    assert delay(status) == 0.25
    assert delay(status, idempotent=False) is None  # a second zone, a second key


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 405, 413, 415, 501, 505])
def test_other_answers_are_final(status: int) -> None:
    assert delay(status) is None


def test_no_connection_is_retried_for_every_call() -> None:
    assert delay(None, sent=False) == 0.25
    assert delay(None, sent=False, idempotent=False) == 0.25


def test_a_broken_or_timed_out_request_is_retried_when_idempotent() -> None:
    assert delay(None, sent=True) == 0.25
    assert delay(None, sent=True, idempotent=False) is None


def test_at_most_max_retries() -> None:
    assert delay(429, retries_done=2) is not None
    assert delay(429, retries_done=3) is None
    assert delay(None, sent=False, retries_done=3) is None
    assert delay(429, policy=RetryPolicy(max_retries=0)) is None


# --- how long ---------------------------------------------------------------------------------


def test_retry_after_in_seconds_is_honoured_exactly() -> None:
    assert delay(429, retry_after_header="1") == 1.0
    assert delay(429, retry_after_header=" 7 ", jitter=0.9) == 7.0
    assert delay(503, retry_after_header="0") == 0.0


def test_retry_after_as_an_http_date() -> None:
    date = email.utils.formatdate(NOW + 5, usegmt=True)
    assert delay(429, retry_after_header=date) == 5.0
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert delay(429, retry_after_header=past) == 0.0


def test_a_retry_after_longer_than_max_wait_gives_up_at_once() -> None:
    assert delay(429, retry_after_header="60") == 60.0
    assert delay(429, retry_after_header="61") is None
    assert delay(429, retry_after_header="3600", policy=RetryPolicy(max_wait=3600)) == 3600


@pytest.mark.parametrize("header", ["soon", "-1", "1.5", "", "Mon, 99 Foo 2024", "1e3"])
def test_an_unreadable_retry_after_falls_back_to_backoff(header: str) -> None:
    assert retry_after(header, NOW) is None
    assert delay(429, retry_after_header=header) == 0.25


def test_retry_after_is_ignored_when_no_answer_came() -> None:
    assert delay(None, sent=False, retry_after_header="30") == 0.25


def test_backoff_doubles_up_to_its_cap_with_jitter_between_half_and_all() -> None:
    steps = [backoff(POLICY, n, jitter=1.0) for n in range(7)]
    assert steps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [backoff(POLICY, n, jitter=0.0) for n in range(3)] == [0.25, 0.5, 1.0]
    assert backoff(POLICY, 1, jitter=0.5) == 0.75
    assert backoff(POLICY, 10_000, jitter=1.0) == 8.0  # no overflow


@pytest.mark.parametrize(
    "given",
    [
        {"max_retries": -1},
        {"backoff": -0.1},
        {"max_backoff": float("inf")},
        {"max_wait": float("nan")},
    ],
)
def test_policy_values_are_checked(given: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**given)
    with pytest.raises(TypeError):
        RetryPolicy(max_retries=1.5)  # type: ignore[arg-type]


# --- the attempts of one call -----------------------------------------------------------------


def answer(status: int, payload: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, content=json.dumps(payload).encode())


def attempts(call: _requests.Call[Any] | None = None, **policy: Any) -> Attempts:
    return Attempts(
        call or _requests.purge(42, ["/a"]),
        RetryPolicy(**{"max_retries": 2, **policy}),
        "http://api.test/v2",
        5.0,
        clock=lambda: NOW,
        jitter=lambda: 1.0,
    )


RATE_LIMITED = {"result": "error", "message": "rate limit exceeded; retry after 1 s"}


def test_a_success_is_the_answer() -> None:
    body = {"result": "success", "message": "Zone Purged", "id": 3}
    assert attempts().after(answer(200, body)) == Answer(200, body)


def test_a_429_waits_as_told_then_succeeds() -> None:
    tries = attempts()
    assert tries.after(answer(429, RATE_LIMITED, **{"Retry-After": "1"})) == 1.0
    assert tries.after(answer(503, {"result": "error", "message": "bus down"})) == 1.0
    ok = {"result": "success", "message": "Zone Purged"}
    assert tries.after(answer(200, ok)) == Answer(200, ok)
    assert tries.retries == 2


def test_the_last_error_is_raised_with_the_api_message_and_attempts() -> None:
    tries = attempts()
    tries.after(answer(429, RATE_LIMITED, **{"Retry-After": "1"}))
    tries.after(answer(429, RATE_LIMITED, **{"Retry-After": "1"}))
    with pytest.raises(ApiError) as caught:
        tries.after(answer(429, RATE_LIMITED, **{"Retry-After": "1"}))
    assert (caught.value.status, caught.value.message, caught.value.attempts) == (
        429,
        RATE_LIMITED["message"],
        3,
    )


def test_retries_off_raise_the_first_429() -> None:
    with pytest.raises(ApiError) as caught:
        attempts(max_retries=0).after(answer(429, RATE_LIMITED, **{"Retry-After": "1"}))
    assert (caught.value.status, caught.value.attempts) == (429, 1)


def test_a_refusal_is_raised_at_once() -> None:
    tries = attempts()
    with pytest.raises(ApiError) as caught:
        tries.after(answer(404, {"result": "error", "message": "no zone 42"}))
    assert (caught.value.status, caught.value.message) == (404, "no zone 42")
    assert tries.retries == 0


def test_creating_a_zone_is_not_retried_after_a_500() -> None:
    tries = attempts(_requests.create_zone("site", "http://o"))
    with pytest.raises(ApiError) as caught:
        tries.after(answer(500, {"result": "error", "message": "saved but not applied"}))
    assert caught.value.status == 500


def test_no_connection_counts_its_attempts_in_the_message() -> None:
    tries = attempts()
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    assert tries.after(refused) == 0.5
    assert tries.after(refused) == 1.0
    with pytest.raises(ApiError) as caught:
        tries.after(refused)
    assert caught.value.status == 0
    assert caught.value.message == (
        "cannot reach the API at http://api.test/v2: Connection refused (3 attempts)"
    )


def test_a_read_timeout_is_not_retried_for_a_new_key() -> None:
    with pytest.raises(ApiError) as caught:
        attempts(_requests.create_key("ci")).after(httpx.ReadTimeout("timed out"))
    assert caught.value.message == "no answer from the API at http://api.test/v2 within 5 s"
    assert attempts().after(httpx.ReadTimeout("timed out")) == 0.5  # a purge is
