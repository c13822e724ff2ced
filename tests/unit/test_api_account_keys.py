"""5centscdn's API key routes over the real API app (`/v2/account/api`): list, create,
show, update, delete with 5centscdn's own example bodies and answers; what each
permission lets a key do; bad input changes nothing; 401 and 403 in 5centscdn's shape."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import ApiHarness

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
EVERY = ["read", "create", "update", "delete"]

# 5centscdn's examples (developer.5centscdn.net, API Keys), verbatim.
CREATE_EXAMPLE = {
    "name": "My Application",
    "description": "Used by the mobile app",
    "permission[]": ["read", "update"],
    "_METHOD": "PUT",
}
UPDATE_EXAMPLE = {
    "name": "My Application",
    "description": "Used by the mobile app",
    "permission[]": ["read", "update"],
}
DELETE_EXAMPLE = {"_METHOD": "DELETE"}


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def error(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    message = body["message"]
    if status in (401, 403):
        assert body == {
            "result": "error",
            "message": message,
            "status": "error",
            "errors": [{"code": status, "message": message}],
        }
    else:
        assert body == {"result": "error", "message": message}
    for word in words:
        assert word in message, message
    return str(message)


async def create(api: ApiHarness, **body: Any) -> tuple[int, str]:
    """(id, secret) of a key created through /v2/account/api."""
    answer = ok(await api.client.post("/account/api/new", json={"name": "app", **body}))
    return int(answer["id"]), str(answer["hash"])


async def listed(api: ApiHarness) -> dict[int, dict[str, Any]]:
    return {k["id"]: k for k in ok(await api.client.get("/account/api"))["apikeys"]}


async def every_key(api: ApiHarness) -> list[dict[str, Any]]:
    """Every key as /v2/keys shows it (revoked ones too): what "nothing changed" compares."""
    return list(ok(await api.client.get("/keys"))["keys"])


# --- the routes, as 5centscdn's examples call them --------------------------------------


async def test_create_answers_5centscdns_shape_with_the_key_in_hash(api: ApiHarness) -> None:
    response = await api.client.post("/account/api/new", json=CREATE_EXAMPLE)
    body = ok(response)
    assert set(body) == {"result", "message", "id", "hash"}
    assert (body["result"], body["message"]) == ("success", "API Key Created")
    assert isinstance(body["id"], int) and body["id"] > 1
    assert response.headers["cache-control"] == "no-store"
    async with api.client_with(body["hash"]) as client:
        assert ok(await client.get("/zones/http/pull"))["zones"] == []


async def test_list_and_show_in_5centscdns_shape_never_with_the_secret(api: ApiHarness) -> None:
    key_id, secret = await create(api, **{k: v for k, v in CREATE_EXAMPLE.items()})
    response = await api.client.get("/account/api")
    body = ok(response)
    assert set(body) == {"result", "apikeys"}
    by_id = {k["id"]: k for k in body["apikeys"]}
    assert set(by_id) == {1, key_id}
    mine = by_id[key_id]
    assert STAMP.match(mine.pop("created_at"))
    serviceid = mine.pop("serviceid")
    assert isinstance(serviceid, int) and serviceid == admin_serviceid(body)
    assert mine == {
        "id": key_id,
        "name": "My Application",
        "description": "Used by the mobile app",
        "permission": ["read", "update"],
        "zones": None,
    }
    admin = by_id[1]
    assert (admin["name"], admin["permission"], admin["zones"]) == ("admin", EVERY, None)
    assert secret not in response.text and "hash" not in response.text
    shown = ok(await api.client.get(f"/account/api/{key_id}"))
    assert set(shown) == {"result", "apikey"} and shown["result"] == "success"
    assert shown["apikey"] == {
        **mine,
        "serviceid": serviceid,
        "created_at": shown["apikey"]["created_at"],
    }
    assert ok(await api.client.get("/account/api/1"))["apikey"]["permission"] == EVERY


async def test_update_with_5centscdns_example_and_fields_left_out_keep_their_value(
    api: ApiHarness,
) -> None:
    key_id, _ = await create(api, description="first", permission=["read"])
    answer = ok(await api.client.post(f"/account/api/{key_id}", json=UPDATE_EXAMPLE))
    assert answer == {"result": "success", "message": "API Key Updated"}
    key = (await listed(api))[key_id]
    assert (key["name"], key["description"], key["permission"]) == (
        "My Application",
        "Used by the mobile app",
        ["read", "update"],
    )
    ok(await api.client.post(f"/account/api/{key_id}", json={"permission": ["delete"]}))
    key = (await listed(api))[key_id]
    assert (key["name"], key["description"], key["permission"]) == (
        "My Application",
        "Used by the mobile app",
        ["delete"],
    )
    ok(await api.client.post(f"/account/api/{key_id}", json={"description": "", "_METHOD": "PUT"}))
    assert (await listed(api))[key_id]["description"] == ""


@pytest.mark.parametrize("how", ["DELETE", "POST _METHOD"])
async def test_delete_and_the_key_is_a_401_at_once(api: ApiHarness, how: str) -> None:
    key_id, secret = await create(api, permission=["read"])
    async with api.client_with(secret) as client:
        assert (await client.get("/zones/http/pull")).status_code == 200
        if how == "DELETE":
            response = await api.client.request(
                "DELETE", f"/account/api/{key_id}", json=DELETE_EXAMPLE
            )
        else:
            response = await api.client.post(f"/account/api/{key_id}", json=DELETE_EXAMPLE)
        assert ok(response) == {"result": "success", "message": "API Key Deleted."}
        error(await client.get("/zones/http/pull"), 401, "unknown or revoked")
    assert key_id not in await listed(api)
    error(await api.client.get(f"/account/api/{key_id}"), 404, f"no API key with id {key_id}")
    error(await api.client.delete(f"/account/api/{key_id}"), 404)
    error(await api.client.post(f"/account/api/{key_id}", json={"name": "x"}), 404)
    revoked = [k for k in await every_key(api) if k["apikeyid"] == key_id]
    assert len(revoked) == 1 and STAMP.match(revoked[0]["revoked_at"])


async def test_the_two_key_apis_show_the_same_keys(api: ApiHarness) -> None:
    zone = await api.create()
    made = ok(
        await api.client.post(
            "/keys", json={"name": "ci", "zones": [zone["id"]], "purge_only": True}
        )
    )["key"]
    assert made["permission"] == ["read", "purge"]
    seen = (await listed(api))[made["apikeyid"]]
    assert (seen["name"], seen["permission"], seen["zones"]) == (
        "ci",
        ["read", "purge"],
        [zone["id"]],
    )
    key_id, _ = await create(api, description="d", permission=["create", "read"])
    [other] = [k for k in await every_key(api) if k["apikeyid"] == key_id]
    assert other["id"] == f"key_{key_id:012x}"
    assert (other["description"], other["permission"], other["purge_only"]) == (
        "d",
        ["read", "create"],
        False,
    )
    # changing a /v2/keys key here keeps the zones it is limited to
    ok(await api.client.post(f"/account/api/{made['apikeyid']}", json={"permission[]": ["read"]}))
    [after] = [k for k in await every_key(api) if k["id"] == made["id"]]
    assert (after["zones"], after["permission"], after["purge_only"]) == (
        [zone["id"]],
        ["read"],
        False,
    )


# --- bad input: a 4xx in our shape, nothing changed ---------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "n"}, ["permission[]", "required"]),
        ({"name": "n", "permission[]": []}, ["permission[]", "at least one permission"]),
        ({"name": "n", "permission[]": ["read", "admin"]}, ["unknown permission 'admin'"]),
        ({"name": "n", "permission": ["sudo"]}, ["unknown permission 'sudo'", "read, create"]),
        ({"name": "n", "permission[]": [1]}, ["unknown permission 1"]),
        ({"name": "n", "permission[]": {"read": 1}}, ["permission[]", "JSON array"]),
        ({"name": "n", "permission[]": None}, ["permission[]", "JSON array"]),
        ({"name": "a" * 256, "permission[]": ["read"]}, ["name", "at most 255"]),
        ({"name": "", "permission[]": ["read"]}, ["name", "must not be empty"]),
        ({"permission[]": ["read"]}, ["name", "required"]),
        ({"name": "n", "description": "x" * 1001, "permission[]": ["read"]}, ["at most 1000"]),
        ({"name": "n", "description": "a\nb", "permission[]": ["read"]}, ["control characters"]),
        ({"name": "n", "permission[]": ["read"], "zones": [1]}, ["unknown field 'zones'"]),
        ({"name": "n", "permission[]": ["read"], "_METHOD": "DELETE"}, ["_METHOD"]),
    ],
)
async def test_an_invalid_create_is_400_and_makes_no_key(
    api: ApiHarness, body: dict[str, Any], words: list[str]
) -> None:
    before = await every_key(api)
    error(await api.client.post("/account/api/new", json=body), 400, *words)
    assert await every_key(api) == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, ["nothing to change"]),
        ({"_METHOD": "POST"}, ["nothing to change"]),
        ({"permission[]": []}, ["at least one permission"]),
        ({"permission[]": ["read", "root"]}, ["unknown permission 'root'"]),
        ({"name": "a" * 256}, ["name", "at most 255"]),
        ({"name": None}, ["name", "null"]),
        ({"_METHOD": "PATCH"}, ["_METHOD"]),
        ({"secret": "mine"}, ["unknown field 'secret'"]),
    ],
)
async def test_an_invalid_update_is_400_and_changes_nothing(
    api: ApiHarness, body: dict[str, Any], words: list[str]
) -> None:
    key_id, secret = await create(api, permission=["read"])
    before = await every_key(api)
    error(await api.client.post(f"/account/api/{key_id}", json=body), 400, *words)
    assert await every_key(api) == before
    async with api.client_with(secret) as client:
        assert (await client.get("/zones/http/pull")).status_code == 200


async def test_the_admin_key_is_never_changed_or_deleted(api: ApiHarness) -> None:
    before = await every_key(api)
    for response in (
        await api.client.post("/account/api/1", json={"permission[]": ["read"]}),
        await api.client.post("/account/api/1", json=DELETE_EXAMPLE),
        await api.client.delete("/account/api/1"),
    ):
        error(response, 400, "admin key cannot be changed or deleted", "PULLZONE_API_KEY")
    assert await every_key(api) == before
    assert (
        await api.client.post("/zones/http/pull/new", json={"name": "n", "origin": "http://o"})
    ).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/account/api/2", 404, ["no API key with id 2", "GET /v2/account/api"]),
        (f"/account/api/{16**12 - 1}", 404, ["no API key"]),
        (f"/account/api/{16**12}", 404, ["no API key"]),
        ("/account/api/0", 400, ["API key id must be a positive integer"]),
        ("/account/api/-3", 400, ["positive integer"]),
        ("/account/api/key_00000000002a", 400, ["positive integer"]),
        ("/account/api/99999999999999999999", 400, ["positive integer"]),
    ],
)
async def test_an_id_that_names_no_key(
    api: ApiHarness, path: str, status: int, words: list[str]
) -> None:
    before = await every_key(api)
    error(await api.client.get(path), status, *words)
    error(await api.client.post(path, json={"name": "x"}), status, *words)
    error(await api.client.delete(path), status, *words)
    assert await every_key(api) == before


async def test_new_is_the_create_route_only(api: ApiHarness) -> None:
    response = await api.client.get("/account/api/new")
    error(response, 405, "use POST")
    assert response.headers["allow"] == "POST"


# --- who may manage keys ------------------------------------------------------------------


async def test_only_the_admin_key_manages_keys_and_403s_carry_5centscdns_shape(
    api: ApiHarness,
) -> None:
    key_id, secret = await create(api, permission=EVERY)
    before = await every_key(api)
    async with api.client_with(secret) as client:
        error(await client.get("/account/api"), 403, "only the admin key may manage API keys")
        error(await client.get(f"/account/api/{key_id}"), 403)
        error(await client.post("/account/api/new", json=CREATE_EXAMPLE), 403)
        error(await client.post(f"/account/api/{key_id}", json=UPDATE_EXAMPLE), 403)
        error(await client.delete(f"/account/api/{key_id}"), 403)
        error(await client.post("/account/api/new", content=b"{"), 403)  # before the body
    async with api.client_with(None) as anonymous:
        error(await anonymous.get("/account/api"), 401, "missing X-API-Key")
    async with api.client_with("not-a-key") as stranger:
        error(await stranger.delete(f"/account/api/{key_id}"), 401, "unknown or revoked")
    assert await every_key(api) == before


async def test_metrics_refusals_carry_5centscdns_shape_too(api: ApiHarness) -> None:
    _, secret = await create(api, permission=EVERY)
    async with api.client_with(None) as anonymous:
        error(await anonymous.get("http://api.test/metrics"), 401, "admin key")
    async with api.client_with(secret) as client:
        error(await client.get("http://api.test/metrics"), 403, "only the admin key")


# --- what each permission lets a key do ---------------------------------------------------


async def client_with_permissions(api: ApiHarness, *held: str) -> httpx.AsyncClient:
    _, secret = await create(api, permission=list(held))
    return api.client_with(secret)


async def test_a_read_key_reads_and_nothing_more(api: ApiHarness) -> None:
    zone = await api.create()
    path = f"/zones/http/pull/{zone['id']}"
    async with await client_with_permissions(api, "read") as client:
        assert ok(await client.get(path))["zone"]["id"] == zone["id"]
        assert [z["id"] for z in ok(await client.get("/zones/http/pull"))["zones"]] == [zone["id"]]
        assert (await client.get(f"{path}/purges")).status_code == 200
        error(await client.post(path, json={"name": "x"}), 403, f"may not update zone {zone['id']}")
        error(await client.post(f"{path}/cache", json={"cache": "1h"}), 403, "may not update")
        error(await client.post(f"{path}/purge", json={"files": ["/a"]}), 403, "may not purge")
        error(await client.delete(path), 403, "may not delete")
        new = {"name": "n", "origin": "http://o.test"}
        error(await client.post("/zones/http/pull/new", json=new), 403, "create permission")
        error(await client.get("/account/ssl"), 403, "update permission")
    assert ok(await api.client.get(path))["zone"] == zone


async def test_an_update_key_updates_and_purges_but_never_deletes_or_creates(
    api: ApiHarness,
) -> None:
    zone = await api.create()
    path = f"/zones/http/pull/{zone['id']}"
    async with await client_with_permissions(api, "update") as client:
        assert ok(await client.post(path, json={"name": "renamed"}))["zone"]["name"] == "renamed"
        assert (
            ok(await client.post(f"{path}/cache", json={"cache": "1h"}))["zone"]["cache"]["cache"]
            == "1h"
        )
        assert (
            ok(await client.post(f"{path}/purge", json={"files": ["/a"]}))["message"]
            == "Zone Purged"
        )
        error(await client.delete(path), 403, "may not delete")
        error(
            await client.post("/zones/http/pull/new", json={"name": "n", "origin": "http://o"}), 403
        )
        error(await client.get(path), 403, "may not read")  # no read permission
        assert ok(await client.get("/account/ssl"))["certs"] == []  # a key for every zone
    assert ok(await api.client.get(path))["zone"]["name"] == "renamed"


async def test_a_create_key_creates_and_a_delete_key_deletes(api: ApiHarness) -> None:
    async with await client_with_permissions(api, "create") as client:
        made = ok(
            await client.post("/zones/http/pull/new", json={"name": "n", "origin": "http://o"})
        )
        zone_id = made["zone"]["id"]
        error(await client.delete(f"/zones/http/pull/{zone_id}"), 403, "may not delete")
    async with await client_with_permissions(api, "delete") as client:
        error(await client.post(f"/zones/http/pull/{zone_id}", json={"name": "x"}), 403)
        assert ok(await client.delete(f"/zones/http/pull/{zone_id}"))["message"] == "Zone Deleted"
    assert await api.zones() == []


async def test_a_permission_change_counts_from_the_next_call(api: ApiHarness) -> None:
    zone = await api.create()
    key_id, secret = await create(api, permission=["read"])
    async with api.client_with(secret) as client:
        purge = f"/zones/http/pull/{zone['id']}/purge"
        error(await client.post(purge, json={"files": ["/a"]}), 403)
        ok(await api.client.post(f"/account/api/{key_id}", json={"permission[]": ["purge"]}))
        assert ok(await client.post(purge, json={"files": ["/a"]}))["message"] == "Zone Purged"
        error(await client.get(f"/zones/http/pull/{zone['id']}"), 403, "may not read")


# --- the OpenAPI document -----------------------------------------------------------------


async def test_the_openapi_document_has_the_routes_and_5centscdns_error_shape(
    api: ApiHarness,
) -> None:
    async with api.client_with(None) as client:
        spec = ok(await client.get("/openapi.json"))
    paths = spec["paths"]
    assert set(paths["/v2/account/api"]) == {"get"}
    assert set(paths["/v2/account/api/new"]) == {"post"}
    assert set(paths["/v2/account/api/{apikeyid}"]) == {"get", "post", "delete"}
    schemas = spec["components"]["schemas"]
    create_schema = schemas["AccountKeyCreate"]
    assert set(create_schema["required"]) == {"name", "permission[]"}
    assert create_schema["properties"]["permission[]"]["items"]["enum"] == [*EVERY, "purge"]
    assert "hash" in schemas["AccountKeyCreated"]["properties"]
    assert "hash" not in schemas["AccountKeyOut"]["properties"]
    for path_item in paths.values():
        for operation in path_item.values():
            for status in ("401", "403"):
                if status in operation["responses"]:
                    ref = operation["responses"][status]["content"]["application/json"]["schema"]
                    assert ref["$ref"].endswith("/AuthErrorAnswer")
    assert set(schemas["AuthErrorAnswer"]["required"]) == {"result", "message", "status", "errors"}


def admin_serviceid(listing: dict[str, object]) -> object:
    """Every key of one installation has the same serviceid: the admin key's."""
    keys = listing["apikeys"]
    assert isinstance(keys, list)
    return next(k["serviceid"] for k in keys if k["id"] == 1)
