"""`Client` and `AsyncClient` on a real loopback socket nobody listens on."""

from __future__ import annotations

import socket

import pytest

from pullzone.client import ApiError, AsyncClient, Client


@pytest.fixture()
def closed_url() -> str:
    """The URL of a loopback port that refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2"


def test_unreachable_api(closed_url: str) -> None:
    with Client(closed_url, "k", timeout=5) as client, pytest.raises(ApiError) as caught:
        client.zones.list()
    assert caught.value.status == 0
    assert caught.value.message.startswith(f"cannot reach the API at {closed_url}: ")


def test_unreachable_api_on_purge(closed_url: str) -> None:
    with Client(closed_url, timeout=5) as client, pytest.raises(ApiError) as caught:
        client.purge(1, ["/a"])
    assert caught.value.status == 0


async def test_unreachable_api_async(closed_url: str) -> None:
    async with AsyncClient(closed_url, "k", timeout=5) as client:
        with pytest.raises(ApiError) as caught:
            await client.zones.get(1)
    assert caught.value.status == 0
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


def test_a_bad_zone_id_never_reaches_the_network(closed_url: str) -> None:
    with Client(closed_url) as client, pytest.raises(ValueError, match="zone id"):
        client.zones.delete("1/purge")
