"""`client.keys`: what the key calls send and how their answers are read (pure), then both
clients against the real API app served on a loopback port."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import LIVE_ADMIN_KEY

from pullzone.client import ApiError, AsyncClient, Client, _requests
from pullzone.client._requests import Call

ADMIN_KEY = LIVE_ADMIN_KEY


def sent(call: Call[Any]) -> tuple[str, str, dict[str, str] | None, Any]:
    return call.method, call.path, dict(call.params) if call.params else None, call.json


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- requests --------------------------------------------------------------------------------


def test_create_key_for_every_zone() -> None:
    assert sent(_requests.create_key("ci")) == (
        "POST",
        "/keys",
        None,
        {"name": "ci", "purge_only": False},
    )


def test_create_key_for_some_zones_purge_only() -> None:
    call = _requests.create_key("deploy-bot", [42, "43"], purge_only=True)
    assert sent(call) == (
        "POST",
        "/keys",
        None,
        {"name": "deploy-bot", "zones": [42, 43], "purge_only": True},
    )
    assert _requests.create_key("t", (z for z in [5])).json["zones"] == [5]


def test_an_empty_zone_list_is_sent_as_it_is_never_as_every_zone() -> None:
    assert _requests.create_key("t", []).json == {"name": "t", "zones": [], "purge_only": False}


@pytest.mark.parametrize("zones", ["42", b"42", 42, {"42": 1}])
def test_zones_must_be_a_list(zones: Any) -> None:
    with pytest.raises(TypeError, match="zones must be a list"):
        _requests.create_key("t", zones)


@pytest.mark.parametrize("zone", [0, -1, "x", True, 1.5, "1/2"])
def test_zones_are_positive_integers(zone: Any) -> None:
    with pytest.raises(ValueError, match="zone id must be a positive integer"):
        _requests.create_key("t", [zone])


def test_the_name_is_a_string() -> None:
    with pytest.raises(TypeError, match="name must be a string"):
        _requests.create_key(None)  # type: ignore[arg-type]


def test_list_keys() -> None:
    assert sent(_requests.list_keys()) == ("GET", "/keys", None, None)


def test_revoke_key() -> None:
    assert sent(_requests.revoke_key("key_3f9a1c0b2d4e")) == (
        "DELETE",
        "/keys/key_3f9a1c0b2d4e",
        None,
        None,
    )


@pytest.mark.parametrize("bad", ["", "a/b", "../zones", "key 1", "k?x=1", "k#", "é", 7, None])
def test_key_ids_never_leave_their_path_segment(bad: Any) -> None:
    with pytest.raises(ValueError, match="key id"):
        _requests.revoke_key(bad)


def test_reading_the_answers() -> None:
    created = {
        "result": "success",
        "message": "Key Created",
        "key": {"id": "key_1"},
        "secret": "s3cret",
    }
    answer = _requests.read_answer(200, body(created))
    new = _requests.create_key("n").result(answer)
    assert (new.key.id, new.secret) == ("key_1", "s3cret")
    keys = _requests.read_answer(200, body({"result": "success", "keys": [{"id": "admin"}]}))
    assert [k.id for k in _requests.list_keys().result(keys)] == ["admin"]
    revoked = {"result": "success", "message": "Key Revoked"}
    assert _requests.revoke_key("key_1").result(_requests.read_answer(200, body(revoked))) is None
    assert _requests.create_key("n").idempotent is False
    with pytest.raises(ApiError, match="'keys'"):
        _requests.list_keys().result(_requests.read_answer(200, body({"result": "success"})))


def test_a_429_is_an_api_error_with_its_message() -> None:
    message = "rate limit exceeded: at most 20 requests per second per key; retry after 1 s"
    with pytest.raises(ApiError) as caught:
        _requests.read_answer(429, body({"result": "error", "message": message}))
    assert (caught.value.status, caught.value.message) == (429, message)


# --- both clients, against the real API on a loopback port -----------------------------------


def test_create_list_revoke(live_api: str) -> None:
    with Client(live_api, ADMIN_KEY) as admin:
        zone = admin.zones.create(name="site", origin="http://origin.test")
        answer = admin.keys.create("deploy-bot", zones=[zone.id], purge_only=True)
        key, secret = answer.key, answer.secret
        assert (key.name, key.zones, key.purge_only) == ("deploy-bot", (zone.id,), True)
        assert {k.id for k in admin.keys.list()} == {"admin", key.id}
        with Client(live_api, secret) as scoped:
            assert [z.id for z in scoped.zones.list()] == [zone.id]
            with pytest.raises(ApiError) as caught:
                scoped.zones.delete(zone.id)
            assert caught.value.status == 403
            with pytest.raises(ApiError) as caught:
                scoped.keys.list()
            assert caught.value.status == 403
            assert admin.keys.revoke(key.id) is None
            with pytest.raises(ApiError) as caught:
                scoped.zones.list()
            assert caught.value.status == 401
        with pytest.raises(ApiError) as caught:
            admin.keys.revoke(key.id)
        assert caught.value.status == 404
        with pytest.raises(ApiError) as caught:
            admin.keys.create("n", zones=[zone.id + 1])
        assert (caught.value.status, caught.value.message) == (
            400,
            f"zones: no zone {zone.id + 1}; list ids from GET /v2/zones/http/pull",
        )


async def test_async_create_list_revoke(live_api: str) -> None:
    async with AsyncClient(live_api, ADMIN_KEY) as admin:
        answer = await admin.keys.create("ci")
        assert answer.key.zones is None and answer.key.purge_only is False
        async with AsyncClient(live_api, answer.secret) as ci:
            assert await ci.zones.list() == []
        listed = await admin.keys.list()
        assert [k.name for k in listed] == ["admin", "ci"]
        assert answer.secret not in repr(listed)
        await admin.keys.revoke(answer.key.id)
        revoked = [k for k in await admin.keys.list() if k.id == answer.key.id]
        assert revoked[0].revoked_at is not None
