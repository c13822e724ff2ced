"""API keys over the real API app (our extension, `/v2/keys`): create, list, revoke; what
scoped and purge-only keys may do; the per-key rate limit (429 with Retry-After)."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from pullzone.bus.events import Event
from pullzone.config import Settings
from pullzone.control.app import create_app
from pullzone.control.keys import ensure_admin_key
from pullzone.control.log import LocalLog

if TYPE_CHECKING:
    from conftest import ApiHarness

ADMIN_KEY = "unit-admin-key-0123456789"  # as the `api_settings` fixture sets it
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
KEY_ID = re.compile(r"^key_[0-9a-f]{12}$")


def error(response: httpx.Response, status: int, *words: str) -> str:
    """The message of an error answer of `status`, which holds each of `words`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["result"] == "error", body
    if status in (401, 403):  # 5centscdn's shape beside ours, the same message
        assert set(body) == {"result", "message", "status", "errors"}, body
        assert body["status"] == "error", body
        assert body["errors"] == [{"code": status, "message": body["message"]}], body
    else:
        assert set(body) == {"result", "message"}, body
    message = str(body["message"])
    for word in words:
        assert word in message, message
    return message


async def new_key(api: ApiHarness, **body: Any) -> tuple[str, dict[str, Any]]:
    """(secret, key) of a key created through the API."""
    response = await api.client.post("/keys", json={"name": "bot", **body})
    assert response.status_code == 200, response.text
    answer = response.json()
    return answer["secret"], answer["key"]


def control_db_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("control.db*")))


def client_for(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://api.test/v2",
        headers={"X-API-Key": key},
    )


@asynccontextmanager
async def app_with(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The API app on `settings`, and a client holding its admin key."""

    async def ignore(event: Event) -> None:
        return None

    app = create_app(settings, LocalLog(settings, ignore))
    ensure_admin_key(app.state.control.conn, settings)
    try:
        async with client_for(app, settings.admin_key or "") as client:
            yield app, client
    finally:
        app.state.control.conn.close()


# --- create, list, revoke --------------------------------------------------------------


async def test_create_answers_the_key_and_its_secret_once(api: ApiHarness) -> None:
    zone = await api.create()
    response = await api.client.post(
        "/keys", json={"name": "deploy-bot", "zones": [zone["id"]], "purge_only": True}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"result", "message", "key", "secret"}
    assert (body["result"], body["message"]) == ("success", "Key Created")
    key = body["key"]
    assert KEY_ID.match(key["id"])
    assert STAMP.match(key.pop("created_at"))
    assert key == {
        "id": key["id"],
        "apikeyid": int(key["id"].removeprefix("key_"), 16),
        "name": "deploy-bot",
        "description": "",
        "admin": False,
        "zones": [zone["id"]],
        "purge_only": True,
        "permission": ["read", "purge"],
        "revoked_at": None,
    }
    secret = body["secret"]
    assert isinstance(secret, str) and len(secret) >= 40
    async with api.client_with(secret) as client:
        assert (await client.get(f"/zones/http/pull/{zone['id']}")).status_code == 200


async def test_method_override_put_is_accepted_as_on_5centscdns_create_routes(
    api: ApiHarness,
) -> None:
    _, key = await new_key(api, _METHOD="PUT")
    assert key["name"] == "bot"
    error(await api.client.post("/keys", json={"name": "n", "_METHOD": "DELETE"}), 400, "_METHOD")


async def test_defaults_every_zone_and_not_purge_only(api: ApiHarness) -> None:
    _, key = await new_key(api)
    assert (key["zones"], key["purge_only"]) == (None, False)
    _, key = await new_key(api, zones=None, purge_only=False)
    assert (key["zones"], key["purge_only"]) == (None, False)


async def test_zone_ids_are_kept_sorted_once(api: ApiHarness) -> None:
    one, two = await api.create(alias="one"), await api.create(alias="two")
    _, key = await new_key(api, zones=[two["id"], one["id"], two["id"]])
    assert key["zones"] == [one["id"], two["id"]]


async def test_list_shows_every_key_and_never_a_secret_or_hash(api: ApiHarness) -> None:
    secret, created = await new_key(api, name="ci")
    response = await api.client.get("/keys")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"result", "keys"} and body["result"] == "success"
    listed = {key["id"]: key for key in body["keys"]}
    assert set(listed) == {"admin", created["id"]}
    assert listed[created["id"]] == created
    assert listed["admin"]["admin"] is True and listed["admin"]["zones"] is None
    for key in body["keys"]:
        assert set(key) == {
            "id",
            "apikeyid",
            "name",
            "description",
            "admin",
            "zones",
            "purge_only",
            "permission",
            "created_at",
            "revoked_at",
        }
    assert listed["admin"]["apikeyid"] == 1
    assert listed["admin"]["permission"] == ["read", "create", "update", "delete"]
    assert listed[created["id"]]["permission"] == ["read", "update", "delete"]
    assert secret not in response.text and ADMIN_KEY not in response.text
    assert "hash" not in response.text


async def test_revoke(api: ApiHarness) -> None:
    secret, key = await new_key(api)
    async with api.client_with(secret) as client:
        assert (await client.get("/zones/http/pull")).status_code == 200
        response = await api.client.delete(f"/keys/{key['id']}")
        assert response.status_code == 200
        assert response.json() == {"result": "success", "message": "Key Revoked"}
        error(await client.get("/zones/http/pull"), 401, "unknown or revoked API key")
    listed = {k["id"]: k for k in (await api.client.get("/keys")).json()["keys"]}
    assert STAMP.match(listed[key["id"]]["revoked_at"])
    error(await api.client.delete(f"/keys/{key['id']}"), 404, "already revoked")


async def test_revoking_an_unknown_key_or_the_admin_key(api: ApiHarness) -> None:
    error(await api.client.delete("/keys/key_000000000000"), 404, "no API key", "GET /v2/keys")
    error(await api.client.delete("/keys/admin"), 400, "admin key cannot be revoked")
    assert (await api.client.get("/zones/http/pull")).status_code == 200


async def test_the_secret_is_never_stored_in_clear(api: ApiHarness) -> None:
    zone = await api.create()
    secrets = [(await new_key(api, zones=[zone["id"]]))[0] for _ in range(3)]
    stored = control_db_bytes(api.settings.data_dir)
    assert stored
    for secret in secrets:
        assert secret.encode() not in stored
    assert ADMIN_KEY.encode() not in stored


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, ["name", "required"]),
        ({"name": ""}, ["name", "must not be empty"]),
        ({"name": "  "}, ["name", "must not be empty"]),
        ({"name": 5}, ["name", "must be a string"]),
        ({"name": None}, ["name", "must be a string"]),
        ({"name": "a\x00b"}, ["control characters"]),
        ({"name": "a" * 256}, ["at most 255"]),
        ({"name": "n", "admin": True}, ["unknown field 'admin'", "name, zones, purge_only"]),
        ({"name": "n", "zones": []}, ["zones", "empty list", "leave zones out"]),
        ({"name": "n", "zones": "1"}, ["zones", "JSON array"]),
        ({"name": "n", "zones": {"1": 1}}, ["zones", "JSON array"]),
        ({"name": "n", "zones": ["1"]}, ["zones", "positive integers, not '1'"]),
        ({"name": "n", "zones": [0]}, ["zones", "positive integers, not 0"]),
        ({"name": "n", "zones": [-3]}, ["zones", "positive integers"]),
        ({"name": "n", "zones": [True]}, ["zones", "positive integers, not True"]),
        ({"name": "n", "zones": [1.0]}, ["zones", "positive integers"]),
        ({"name": "n", "zones": [2**63]}, ["zones", "positive integers"]),
        ({"name": "n", "zones": [None]}, ["zones", "positive integers"]),
        ({"name": "n", "purge_only": "yes"}, ["purge_only", "true or false"]),
        ({"name": "n", "purge_only": 1}, ["purge_only", "true or false"]),
        ({"name": "n", "purge_only": None}, ["purge_only", "true or false"]),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(
    api: ApiHarness, body: dict[str, Any], words: list[str]
) -> None:
    error(await api.client.post("/keys", json=body), 400, *words)


async def test_zones_must_exist_and_the_missing_ones_are_named(api: ApiHarness) -> None:
    zone = await api.create()
    missing = zone["id"] + 1
    error(
        await api.client.post("/keys", json={"name": "n", "zones": [zone["id"], missing]}),
        400,
        f"zones: no zone {missing};",
    )
    error(
        await api.client.post("/keys", json={"name": "n", "zones": [7, 8, zone["id"]]}),
        400,
        "zones: no zones 7, 8;",
    )
    many = list(range(100, 125))
    message = error(await api.client.post("/keys", json={"name": "n", "zones": many}), 400)
    assert "and 15 more" in message and len(message) < 200
    assert [k["id"] for k in (await api.client.get("/keys")).json()["keys"]] == ["admin"]


async def test_a_deleted_zone_can_no_longer_be_given(api: ApiHarness) -> None:
    zone = await api.create()
    assert (await api.client.delete(f"/zones/http/pull/{zone['id']}")).status_code == 200
    error(
        await api.client.post("/keys", json={"name": "n", "zones": [zone["id"]]}),
        400,
        f"no zone {zone['id']}",
    )


async def test_bodies_that_are_not_json_objects(api: ApiHarness) -> None:
    not_json = await api.client.post(
        "/keys", content=b"name=n", headers={"Content-Type": "text/plain"}
    )
    error(not_json, 415, "application/json or application/x-www-form-urlencoded")
    error(await api.client.post("/keys", content=b"{"), 400, "malformed JSON")
    error(await api.client.post("/keys", json=["n"]), 400, "JSON object")
    error(await api.client.post("/keys"), 400, "needs a body")


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/keys"), ("GET", "/keys/key_0123456789ab"), ("PATCH", "/keys")]
)
async def test_methods_the_routes_do_not_have(api: ApiHarness, method: str, path: str) -> None:
    response = await api.client.request(method, path)
    error(response, 405, "not allowed")
    assert response.headers["allow"]


# --- who may manage keys -----------------------------------------------------------------


async def test_only_the_admin_key_manages_keys(api: ApiHarness) -> None:
    secret, key = await new_key(api)  # every zone, not purge-only: still not the admin
    async with api.client_with(secret) as client:
        error(await client.post("/keys", json={"name": "n"}), 403, "only the admin key")
        error(await client.get("/keys"), 403, "manage API keys")
        error(await client.delete(f"/keys/{key['id']}"), 403, "manage API keys")
    async with api.client_with(None) as anonymous:
        error(await anonymous.get("/keys"), 401, "missing X-API-Key")
    async with api.client_with("not-a-key") as stranger:
        error(await stranger.post("/keys", json={"name": "n"}), 401, "unknown or revoked")


async def test_the_key_is_checked_before_the_body(api: ApiHarness) -> None:
    secret, _ = await new_key(api)
    async with api.client_with(secret) as client:
        error(await client.post("/keys", content=b"{"), 403)
    async with api.client_with(None) as anonymous:
        error(await anonymous.post("/keys", json={"bad": 1}), 401)


# --- what scoped keys may do -------------------------------------------------------------


async def test_a_zone_scoped_key_reaches_only_its_zones(api: ApiHarness) -> None:
    mine, other = await api.create(alias="mine"), await api.create(alias="other")
    secret, _ = await new_key(api, zones=[mine["id"]])
    async with api.client_with(secret) as client:
        listed = (await client.get("/zones/http/pull")).json()["zones"]
        assert [z["id"] for z in listed] == [mine["id"]]
        assert (await client.get(f"/zones/http/pull/{mine['id']}")).status_code == 200
        changed = await client.post(f"/zones/http/pull/{mine['id']}", json={"name": "renamed"})
        assert changed.status_code == 200
        other_path = f"/zones/http/pull/{other['id']}"
        error(await client.get(other_path), 403, f"may not read zone {other['id']}")
        error(await client.post(other_path, json={"name": "x"}), 403, "may not update")
        error(await client.post(f"{other_path}/cache", json={"cache": "1h"}), 403)
        error(await client.post(f"{other_path}/purge", json={"files": ["/a"]}), 403, "purge")
        error(await client.delete(other_path), 403)
        # a zone that does not exist is no business of this key either: 403, not 404
        error(await client.get(f"/zones/http/pull/{other['id'] + 10}"), 403)
        created = await client.post(
            "/zones/http/pull/new", json={"name": "n", "origin": "http://o"}
        )
        error(created, 403, "may not create zones", "create permission")
    assert (await api.client.get(other_path)).json()["zone"]["name"] == "site"


async def test_a_purge_only_key_reads_and_purges_but_never_changes(api: ApiHarness) -> None:
    zone = await api.create()
    path = f"/zones/http/pull/{zone['id']}"
    secret, _ = await new_key(api, purge_only=True)
    async with api.client_with(secret) as client:
        assert (await client.get(path)).status_code == 200
        assert (await client.get("/zones/http/pull")).status_code == 200
        purged = await client.post(f"{path}/purge", json={"files": ["/a.png"]})
        assert purged.status_code == 200, purged.text
        assert purged.json()["message"] == "Zone Purged"
        error(await client.post(path, json={"name": "renamed"}), 403, "may not update")
        error(await client.post(f"{path}/cache", json={"cache": "1h"}), 403, "may not update")
        error(await client.delete(path), 403, "may not delete")
        created = await client.post(
            "/zones/http/pull/new", json={"name": "n", "origin": "http://o"}
        )
        error(created, 403)
    assert (await api.client.get(path)).json()["zone"] == zone


async def test_a_zone_scoped_purge_only_key(api: ApiHarness) -> None:
    mine, other = await api.create(alias="mine"), await api.create(alias="other")
    secret, _ = await new_key(api, zones=[mine["id"]], purge_only=True)
    async with api.client_with(secret) as client:
        assert (await client.get(f"/zones/http/pull/{mine['id']}")).status_code == 200
        error(await client.delete(f"/zones/http/pull/{mine['id']}"), 403)
        error(await client.get(f"/zones/http/pull/{other['id']}"), 403)


# --- the rate limit ----------------------------------------------------------------------


def test_the_default_limit() -> None:
    settings = Settings(data_dir=Path("/nowhere"))
    assert (settings.api_rate, settings.api_burst) == (20.0, 100)


async def test_429_with_retry_after_once_the_burst_is_spent(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, api_rate=0.5, api_burst=3)
    async with app_with(settings) as (_, admin):
        for _ in range(3):
            assert (await admin.get("/zones/http/pull")).status_code == 200
        limited = await admin.get("/zones/http/pull")
        error(
            limited,
            429,
            "rate limit exceeded: at most 0.5 requests per second per key; retry after 2 s",
        )
        assert limited.headers["retry-after"] == "2"
        # every authenticated call counts, whatever the route and whatever comes after
        error(await admin.post("/keys", json={"name": "n"}), 429)
        error(await admin.get("/zones/http/pull/not-a-number"), 429)


async def test_the_limit_is_per_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, api_rate=0.01, api_burst=2)
    async with app_with(settings) as (app, admin):
        secret = (await admin.post("/keys", json={"name": "n"})).json()["secret"]
        assert (await admin.get("/keys")).status_code == 200
        limited = await admin.get("/keys")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == str(math.ceil(1 / 0.01))
        async with client_for(app, secret) as other:
            assert (await other.get("/zones/http/pull")).status_code == 200
            assert (await other.get("/zones/http/pull")).status_code == 200
            assert (await other.get("/zones/http/pull")).status_code == 429
            # calls without a valid key are 401, and cost no key anything
            other.headers["X-API-Key"] = "not-a-key"
            assert (await other.get("/zones/http/pull")).status_code == 401


async def test_a_rate_of_zero_is_no_limit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, api_rate=0, api_burst=1)
    async with app_with(settings) as (_, admin):
        for _ in range(150):
            assert (await admin.get("/zones/http/pull")).status_code == 200


async def test_the_openapi_document_has_the_keys_routes_and_429(api: ApiHarness) -> None:
    async with api.client_with(None) as client:
        spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths["/v2/keys"]) == {"get", "post"}
    assert set(paths["/v2/keys/{keyid}"]) == {"delete"}
    create = paths["/v2/keys"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/KeyCreate"
    )
    schemas = spec["components"]["schemas"]
    assert schemas["KeyCreate"]["required"] == ["name"]
    assert schemas["KeyCreate"]["additionalProperties"] is False
    assert "secret" in schemas["KeyCreated"]["properties"]
    assert "secret" not in schemas["KeyOut"]["properties"]
    for path_item in paths.values():
        for operation in path_item.values():
            if "401" in operation["responses"]:
                limited = operation["responses"]["429"]
                assert "Retry-After" in limited["headers"]
