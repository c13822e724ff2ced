"""`Client` and `AsyncClient` on real loopback sockets: one nobody listens on, and a scripted
HTTP server that answers what each test says (429s, 5xx, slow answers)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from origin import Origin, Reply, Seen

from pullzone.client import ApiError, AsyncClient, Client


def test_unreachable_api(closed_url: str) -> None:
    client = Client(closed_url, "k", timeout=5, max_retries=0)
    with client, pytest.raises(ApiError) as caught:
        client.zones.list()
    assert (caught.value.status, caught.value.attempts) == (0, 1)
    assert caught.value.message.startswith(f"cannot reach the API at {closed_url}: ")


def test_unreachable_api_is_tried_again(closed_url: str) -> None:
    client = Client(closed_url, timeout=5, max_retries=2, backoff=0.05)
    started = time.monotonic()
    with client, pytest.raises(ApiError) as caught:
        client.purge(1, ["/a"])
    assert time.monotonic() - started >= 0.025 + 0.05  # two waits, at least half a step each
    assert (caught.value.status, caught.value.attempts) == (0, 3)
    assert caught.value.message.endswith("(3 attempts)")
    with Client(closed_url, max_retries=1, backoff=0) as client, pytest.raises(ApiError) as again:
        client.zones.create(name="n", origin="http://o")  # nothing was sent: safe to retry
    assert again.value.attempts == 2


async def test_unreachable_api_async(closed_url: str) -> None:
    async with AsyncClient(closed_url, "k", timeout=5, max_retries=1, backoff=0) as client:
        with pytest.raises(ApiError) as caught:
            await client.zones.get(1)
    assert (caught.value.status, caught.value.attempts) == (0, 2)
    assert caught.value.message.startswith(f"cannot reach the API at {closed_url}: ")


def test_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULLZONE_API_URL", raising=False)
    monkeypatch.delenv("PULLZONE_API_KEY", raising=False)
    with Client() as client:
        assert (client.base_url, client.api_key, client.timeout) == (
            "http://127.0.0.1:8081/v2",
            None,
            30.0,
        )
        assert client.retry.max_retries == 3
    monkeypatch.setenv("PULLZONE_API_URL", "http://10.0.0.1:9000/v2")
    monkeypatch.setenv("PULLZONE_API_KEY", "secret")
    with Client() as client:
        assert (client.base_url, client.api_key) == ("http://10.0.0.1:9000/v2", "secret")
    with Client("http://h/v2", "mine", timeout=3) as client:
        assert (client.base_url, client.api_key, client.timeout) == ("http://h/v2", "mine", 3)


async def test_async_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULLZONE_API_URL", "http://10.0.0.1:9000/v2")
    monkeypatch.setenv("PULLZONE_API_KEY", "secret")
    async with AsyncClient() as client:
        assert (client.base_url, client.api_key) == ("http://10.0.0.1:9000/v2", "secret")


def test_a_bad_base_url_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="http"):
        Client("ftp://example.com/v2")


@pytest.mark.parametrize(
    "given", [{"timeout": 0}, {"timeout": -1}, {"max_retries": -1}, {"backoff": -1}]
)
def test_bad_timeouts_and_retries_are_refused_at_once(given: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Client("http://h/v2", **given)


def test_a_bad_zone_id_never_reaches_the_network(closed_url: str) -> None:
    with Client(closed_url) as client, pytest.raises(ValueError, match="zone id"):
        client.zones.delete("1/purge")


# --- a scripted API -------------------------------------------------------------------------

SUCCESS = {"result": "success", "message": "Zone Purged", "id": 5}
ZONE = {"id": 3, "name": "n", "alias": "n", "fqdn": "n.localhost", "origin": "http://o"}


def json_reply(status: int, payload: dict[str, Any], *headers: tuple[str, str]) -> Reply:
    return Reply(
        status, [("Content-Type", "application/json"), *headers], json.dumps(payload).encode()
    )


def error(status: int, message: str, *headers: tuple[str, str]) -> Reply:
    return json_reply(status, {"result": "error", "message": message}, *headers)


@pytest.fixture()
def api() -> Iterator[Origin]:
    """An HTTP server on loopback whose answers each test scripts; its base URL is api.url/v2."""
    server = Origin()
    yield server
    server.close()


def script(api: Origin, path: str, *replies: Reply) -> None:
    """`path` answers the replies in turn (the last one from then on)."""
    queue = list(replies)

    def answer(seen: Seen) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    api.route(path, answer)


PURGE = "/v2/zones/http/pull/42/purge"


def test_what_goes_on_the_wire(api: Origin) -> None:
    script(api, PURGE, json_reply(200, SUCCESS))
    with Client(f"{api.url}/v2", "secret-key") as client:
        result = client.purge(42, files=["/videos/file.mp4", "/images/logo.png"], delete=True)
    assert (result.id, result.message) == (5, "Zone Purged")
    [seen] = api.seen[PURGE + "?delete=true"]
    assert seen.method == "POST"
    assert seen.headers["x-api-key"] == "secret-key"
    assert seen.headers["content-type"] == "application/json"
    assert json.loads(seen.body) == {"files": ["/videos/file.mp4", "/images/logo.png"]}


def test_a_503_then_success(api: Origin) -> None:
    script(
        api,
        PURGE,
        error(503, "cluster bus unreachable: nothing was purged"),
        json_reply(200, SUCCESS),
    )
    with Client(f"{api.url}/v2", "k", backoff=0.01) as client:
        assert client.purge(42, ["/a"]).id == 5
    assert api.count(PURGE) == 2


def test_a_429_waits_for_retry_after(api: Origin) -> None:
    script(
        api,
        PURGE,
        error(429, "rate limit exceeded", ("Retry-After", "1")),
        json_reply(200, SUCCESS),
    )
    started = time.monotonic()
    with Client(f"{api.url}/v2", "k", backoff=0.01) as client:
        assert client.purge(42).id == 5
    assert time.monotonic() - started >= 0.95
    assert api.count(PURGE) == 2


async def test_async_retries_the_same_way(api: Origin) -> None:
    script(
        api,
        PURGE,
        error(502, "bad gateway"),
        error(429, "slow down", ("Retry-After", "0")),
        json_reply(200, SUCCESS),
    )
    async with AsyncClient(f"{api.url}/v2", "k", backoff=0.01) as client:
        assert (await client.purge(42, tags=["t"])).id == 5
    assert api.count(PURGE) == 3


def test_retries_give_up_with_the_last_answer(api: Origin) -> None:
    script(api, PURGE, error(503, "still down"))
    client = Client(f"{api.url}/v2", "k", max_retries=2, backoff=0.01)
    with client, pytest.raises(ApiError) as caught:
        client.purge(42)
    assert (caught.value.status, caught.value.message, caught.value.attempts) == (
        503,
        "still down",
        3,
    )
    assert api.count(PURGE) == 3


def test_a_retry_after_beyond_max_retry_wait_is_not_waited_for(api: Origin) -> None:
    script(api, PURGE, error(429, "come back in an hour", ("Retry-After", "3600")))
    started = time.monotonic()
    with (
        Client(f"{api.url}/v2", "k", max_retry_wait=10) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.purge(42)
    assert time.monotonic() - started < 5
    assert (caught.value.status, api.count(PURGE)) == (429, 1)


def test_creating_a_zone_is_not_sent_twice_after_a_500(api: Origin) -> None:
    script(api, "/v2/zones/http/pull/new", error(500, "saved but not applied"))
    with Client(f"{api.url}/v2", "k", backoff=0.01) as client, pytest.raises(ApiError) as caught:
        client.zones.create(name="n", origin="http://o")
    assert (caught.value.status, api.count("/v2/zones/http/pull/new")) == (500, 1)


def test_a_slow_answer_times_out_and_an_idempotent_call_is_tried_again(api: Origin) -> None:
    script(
        api,
        "/v2/zones/http/pull/3",
        Reply(delay=1.0),
        json_reply(200, {"result": "success", "zone": ZONE}),
    )
    with Client(f"{api.url}/v2", "k", timeout=0.3, backoff=0.01) as client:
        assert client.zones.get(3).id == 3
    assert api.count("/v2/zones/http/pull/3") == 2
    script(api, "/v2/zones/http/pull/new", Reply(delay=1.0))
    with (
        Client(f"{api.url}/v2", "k", timeout=0.3, backoff=0.01) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.zones.create(name="n", origin="http://o")
    assert caught.value.status == 0
    assert caught.value.message == f"no answer from the API at {api.url}/v2 within 0.3 s"
    assert api.count("/v2/zones/http/pull/new") == 1
