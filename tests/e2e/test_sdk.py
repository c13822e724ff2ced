"""The Python SDK (`from pullzone import Client, AsyncClient`) against a real `pullzone serve`:
every call, sync and async, and what each failure raises."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from origin import Origin, Reply
from ports import free_port
from server import API_KEY, Server

from pullzone import ApiError, AsyncClient, Client
from pullzone.client import (
    MAX_PREFETCH_FILES,
    ApiKey,
    CachePolicy,
    NewKey,
    PrefetchResult,
    PurgeRecord,
    PurgeResult,
    Zone,
    purge_batches,
)

CACHED = Reply(headers=[("Cache-Control", "max-age=3600")], body=b"cached")


def warm(server: Server, zone: Zone, *paths: str) -> None:
    for path in paths:
        server.get(zone.fqdn, path)
        assert server.get(zone.fqdn, path).headers["x-cache"] == "HIT", path


def x_cache(server: Server, zone: Zone, path: str) -> str:
    return str(server.get(zone.fqdn, path).headers["x-cache"])


@pytest.fixture()
def client(server: Server) -> Any:
    with Client(base_url=server.api_url, api_key=API_KEY) as sdk:
        yield sdk


# --- zones -------------------------------------------------------------------------------------


def test_zone_calls(client: Client, origin: Origin) -> None:
    zone = client.zones.create(
        "sdk site",
        origin.url,
        alias="sdksite",
        cnames=["sdk-calls.example.net", "192.0.2.77"],
        cache={"cache": "1h", "querystring": False},
    )
    assert isinstance(zone, Zone) and isinstance(zone.cache, CachePolicy)
    assert (zone.name, zone.fqdn, zone.cnames, zone.disabled, zone.status) == (
        "sdk site",
        "sdksite.localhost",
        ("sdk-calls.example.net", "192.0.2.77"),
        False,
        "Enabled",
    )
    assert (zone.cache.cache, zone.cache.cache_secs, zone.cache.querystring) == ("1h", 3600, False)
    assert zone in client.zones.list()
    assert client.zones.get(zone.id) == zone

    updated = client.zones.update(zone.id, name="renamed", host_header="origin.example")
    assert (updated.name, updated.host_header, updated.cache.cache) == (
        "renamed",
        "origin.example",
        "1h",
    )
    cached = client.zones.update_cache(zone.id, expiry="1d", usestale=False)
    assert (cached.cache.expiry, cached.cache.usestale, cached.cache.cache) == ("1d", False, "1h")
    disabled = client.zones.update(str(zone.id), disabled=True)
    assert (disabled.disabled, disabled.status) == (True, "Disabled")

    assert client.zones.delete(zone.id) is None
    with pytest.raises(ApiError) as caught:
        client.zones.get(zone.id)
    assert caught.value.status == 404
    assert zone.id not in [z.id for z in client.zones.list()]


# --- purge -------------------------------------------------------------------------------------


def test_purge_files_as_the_seed_does(
    client: Client, server: Server, origin: Origin, path: str
) -> None:
    zone = client.zones.create("seed", origin.url)
    other = path.replace("object", "other")
    for p in (path, other):
        origin.route(p, CACHED)
    warm(server, zone, path, other)

    result = client.purge(zone.id, files=[path], delete=True)
    assert isinstance(result, PurgeResult)
    assert (result.message, result.purged, result.pending) == ("Zone Purged", 1, ())
    assert x_cache(server, zone, path) == "MISS"
    assert x_cache(server, zone, other) == "HIT"

    history = client.purges(zone.id)
    assert isinstance(history[0], PurgeRecord)
    assert (history[0].id, history[0].files, history[0].delete, history[0].all) == (
        result.id,
        (path,),
        True,
        False,
    )


def test_purge_the_whole_zone_and_by_tag(
    client: Client, server: Server, origin: Origin, path: str
) -> None:
    zone = client.zones.create("whole", origin.url)
    tagged = path.replace("object", "tagged")
    origin.route(path, CACHED)
    origin.route(tagged, Reply(headers=[("Cache-Control", "max-age=3600"), ("Cache-Tag", "promo")]))
    warm(server, zone, path, tagged)

    by_tag = client.purge(zone.id, tags=["promo"], delete=True)
    assert by_tag.purged == 1
    assert (x_cache(server, zone, tagged), x_cache(server, zone, path)) == ("MISS", "HIT")

    whole = client.purge(zone.id)  # soft: stale at once, revalidated on the next request
    assert whole.id is not None and whole.id > (by_tag.id or 0)
    assert x_cache(server, zone, path) != "HIT"
    history = client.purges(zone.id)
    assert [(r.all, r.delete, r.tags) for r in history] == [
        (True, False, ()),
        (False, True, ("promo",)),
    ]


def test_prefetch_stores_objects_before_visitors_ask(
    client: Client, server: Server, origin: Origin, path: str
) -> None:
    zone = client.zones.create("prefetched", origin.url)
    paths = [path, path.replace("object", "other")]
    for p in paths:
        origin.route(p, CACHED)

    result = client.prefetch(zone.id, [*paths, paths[0]])  # one twice: asked for once

    assert isinstance(result, PrefetchResult)
    assert (result.message, result.files, result.pending) == ("Zone Prefetched", 2, ())
    assert result.id is not None
    assert [origin.count(p) for p in paths] == [1, 1]  # stored before the answer
    assert [x_cache(server, zone, p) for p in paths] == ["HIT", "HIT"]
    with pytest.raises(ApiError) as caught:
        client.prefetch(zone.id, ["/img/*.png"])
    assert caught.value.status == 400 and "*" in caught.value.message


def test_a_long_prefetch_list_in_batches(
    client: Client, server: Server, origin: Origin, path: str
) -> None:
    zone = client.zones.create("prefetched list", origin.url)
    paths = [path.replace("object", f"{n}") for n in range(1_500)]
    for p in paths:
        origin.route(p, CACHED)
    results = [
        client.prefetch(zone.id, batch)
        for batch in purge_batches(paths, max_files=MAX_PREFETCH_FILES)
    ]
    assert [r.files for r in results] == [1_000, 500]
    assert [p for p in paths if origin.count(p) != 1] == []
    assert (x_cache(server, zone, paths[0]), x_cache(server, zone, paths[-1])) == ("HIT", "HIT")


# --- keys --------------------------------------------------------------------------------------


def test_key_calls_and_a_purge_only_key(client: Client, server: Server, origin: Origin) -> None:
    zone = client.zones.create("keyed", origin.url)
    created = client.keys.create("deploy-bot", zones=[zone.id], purge_only=True)
    assert isinstance(created, NewKey) and isinstance(created.key, ApiKey)
    assert (created.key.zones, created.key.purge_only, created.key.admin) == (
        (zone.id,),
        True,
        False,
    )
    assert created.key.id in [k.id for k in client.keys.list()]

    with Client(server.api_url, created.secret) as bot:
        assert bot.purge(zone.id, files=["/a.png"]).message == "Zone Purged"
        assert [z.id for z in bot.zones.list()] == [zone.id]
        with pytest.raises(ApiError) as caught:
            bot.zones.update(zone.id, name="not allowed")
        assert caught.value.status == 403
        with pytest.raises(ApiError) as caught:
            bot.keys.list()
        assert caught.value.status == 403

        assert client.keys.revoke(created.key.id) is None
        with pytest.raises(ApiError) as caught:
            bot.purge(zone.id)
        assert caught.value.status == 401
    revoked = [k for k in client.keys.list() if k.id == created.key.id]
    assert revoked[0].revoked_at is not None


# --- async -------------------------------------------------------------------------------------


async def test_every_call_async(server: Server, origin: Origin, path: str) -> None:
    async with AsyncClient(server.api_url, API_KEY) as client:
        zone = await client.zones.create("async", origin.url, alias="asyncsite")
        assert zone.fqdn == "asyncsite.localhost"
        assert await client.zones.get(zone.id) == zone
        assert zone.id in [z.id for z in await client.zones.list()]
        assert (await client.zones.update(zone.id, name="a2")).name == "a2"
        assert (await client.zones.update_cache(zone.id, cache="2h")).cache.cache_secs == 7200

        origin.route(path, CACHED)
        warm(server, zone, path)
        result = await client.purge(zone.id, files=[path], delete=True)
        assert result.purged == 1 and x_cache(server, zone, path) == "MISS"
        assert (await client.purge(zone.id, tags=["none"])).purged == 0
        assert (await client.purge(zone.id, delete=True)).message == "Zone Purged"
        assert [r.id for r in await client.purges(zone.id)][-1] == result.id
        prefetched = await client.prefetch(zone.id, [path])
        assert prefetched.files == 1 and x_cache(server, zone, path) == "HIT"

        created = await client.keys.create("async-bot", zones=[zone.id])
        assert created.key.id in [k.id for k in await client.keys.list()]
        assert await client.keys.revoke(created.key.id) is None

        assert await client.zones.delete(zone.id) is None
        with pytest.raises(ApiError) as caught:
            await client.zones.get(zone.id)
        assert caught.value.status == 404


# --- failures ----------------------------------------------------------------------------------


def test_a_wrong_key(server: Server) -> None:
    with Client(server.api_url, "not-a-key") as client, pytest.raises(ApiError) as caught:
        client.zones.list()
    assert caught.value.status == 401
    assert caught.value.message == "unknown or revoked API key: check the X-API-Key header"
    assert str(caught.value).endswith("(HTTP 401)")


async def test_a_wrong_key_async(server: Server) -> None:
    async with AsyncClient(server.api_url, "not-a-key") as client:
        with pytest.raises(ApiError) as caught:
            await client.purge(1, ["/a"])
    assert caught.value.status == 401


def test_an_unknown_zone(client: Client) -> None:
    for call in (
        lambda: client.zones.get(999_999),
        lambda: client.purge(999_999, ["/a"]),
        lambda: client.purges(999_999),
        lambda: client.zones.update_cache(999_999, cache="1h"),
    ):
        with pytest.raises(ApiError) as caught:
            call()
        assert caught.value.status == 404
        assert "999999" in caught.value.message


def test_a_refused_purge_carries_the_servers_message(client: Client, origin: Origin) -> None:
    zone = client.zones.create("bad", origin.url)
    with pytest.raises(ApiError) as caught:
        client.purge(zone.id, files=["/x/../y"])
    assert caught.value.status == 400
    assert caught.value.message == "'/x/../y' has a . or .. segment: give the path itself"
    with pytest.raises(ApiError) as caught:
        client.purge(zone.id, files=[])
    assert caught.value.status == 400  # an empty list never widens to the whole zone


def test_rate_limited_calls_wait_for_retry_after(tmp_path: Path) -> None:
    limited = Server(tmp_path / "data", "--api-rate-limit", "1", "--api-burst", "1").start()
    try:
        # backoff alone (10 ms, doubling) would give up long before a token comes back:
        # only waiting as Retry-After says gets the second call through
        with Client(limited.api_url, API_KEY, backoff=0.01) as client:
            client.zones.list()  # takes the one token (waiting for it if need be)
            started = time.monotonic()
            zone_list = client.zones.list()  # 429, Retry-After: 1, then through
            assert zone_list == []
            assert time.monotonic() - started >= 0.9
        client = Client(limited.api_url, API_KEY, max_retries=0)
        with client, pytest.raises(ApiError) as caught:
            for _ in range(3):
                client.zones.list()
        assert caught.value.status == 429
        assert caught.value.message.startswith("rate limit exceeded")
    finally:
        limited.stop()


async def test_rate_limited_calls_wait_async(tmp_path: Path) -> None:
    limited = Server(tmp_path / "data", "--api-rate-limit", "1", "--api-burst", "1").start()
    try:
        async with AsyncClient(limited.api_url, API_KEY, backoff=0.01) as client:
            for _ in range(3):
                assert await client.zones.list() == []
    finally:
        limited.stop()


@pytest.fixture()
def down_url() -> str:
    """The API URL of a server that is down: a loopback port nobody listens on."""
    return f"http://127.0.0.1:{free_port()}/v2"


def test_no_server(down_url: str) -> None:
    client = Client(down_url, API_KEY, max_retries=1, backoff=0.01)
    with client, pytest.raises(ApiError) as caught:
        client.purge(42, files=["/videos/file.mp4"])
    assert caught.value.status == 0
    assert caught.value.message == (
        f"cannot reach the API at {down_url}: Connection refused (2 attempts)"
    )


async def test_no_server_async(down_url: str) -> None:
    async with AsyncClient(down_url, API_KEY, max_retries=0) as client:
        with pytest.raises(ApiError) as caught:
            await client.zones.list()
    assert caught.value.status == 0
    assert caught.value.message.startswith(f"cannot reach the API at {down_url}: ")


def test_base_url_and_key_from_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULLZONE_API_URL", server.api_url)
    monkeypatch.setenv("PULLZONE_API_KEY", API_KEY)
    with Client() as client:
        assert isinstance(client.zones.list(), list)
