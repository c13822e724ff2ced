"""Account certificates (`/v2/account/ssl`) and the zone's `ssl` block, through the real
app and control.db: every answer, every refusal, and that a refusal stores nothing."""

from __future__ import annotations

import os
import stat
from typing import Any

import httpx
import pytest
from certs_support import issued, other_key
from conftest import ApiHarness, api_settings_for, stored_key

from pullzone.certs.model import REDACTED
from pullzone.config import Settings

HOST = "cdn.example.com"


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] == "success"
    return dict(body)


def refused(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["result"] == "error"
    message = str(body["message"])
    for word in words:
        assert word in message, message
    return message


async def upload(api: ApiHarness, *names: str, **fields: Any) -> dict[str, Any]:
    pem = issued(*(names or (HOST,)))
    body = {"name": "site cert", "crt": pem.crt, "key": pem.key, **fields}
    return dict(ok(await api.client.post("/account/ssl/new", json=body))["cert"])


async def cert_count(api: ApiHarness) -> int:
    return len(ok(await api.client.get("/account/ssl"))["certs"])


async def test_upload_answers_the_certificate_without_its_key(api: ApiHarness) -> None:
    pem = issued(HOST, "*.static.example.com", intermediate=True)
    body = {"_METHOD": "PUT", "name": "site", "crt": pem.crt, "key": pem.key}
    answer = ok(await api.client.post("/account/ssl/new", json={**body, "cabundle": pem.cabundle}))
    assert answer["message"] == "Operation completed successfully"
    cert = answer["cert"]
    assert cert["key"] == REDACTED
    assert (cert["name"], cert["domain"], cert["sans"]) == (
        "site",
        HOST,
        [HOST, "*.static.example.com"],
    )
    assert cert["expired"] is False and cert["installs"] == 0 and cert["zones"] == []
    assert len(cert["expiry"]) == 10 and cert["validFrom"] < cert["expiry"]
    assert cert["cabundle"].count("BEGIN CERTIFICATE") == 1
    shown = ok(await api.client.get(f"/account/ssl/{cert['id']}"))["cert"]
    assert shown == cert
    listed = ok(await api.client.get("/account/ssl"))["certs"]
    assert listed == [cert]
    for text in (str(answer), str(listed)):
        assert pem.key.splitlines()[1] not in text


async def test_a_name_left_out_is_the_domain_and_expiry(api: ApiHarness) -> None:
    cert = await upload(api, name="")
    assert cert["name"] == f"{HOST} {cert['expiry']}"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"crt": "garbage"}, ("crt is not a PEM certificate",)),
        ({"key": "garbage"}, ("key is not a PEM private key",)),
        ({"key": "mismatch"}, ("key: does not match",)),
        ({"cabundle": "stranger"}, ("cabundle: the chain does not verify",)),
        ({"crt": "big"}, ("crt:", "KiB")),
        ({"crt": 5}, ("crt: must be a string",)),
        ({"crt": None}, ("crt",)),
        ({"extra": 1}, ("unknown field 'extra'",)),
        ({"_METHOD": "DELETE"}, ("_METHOD",)),
    ],
)
async def test_bad_uploads_are_400_and_store_nothing(
    api: ApiHarness, change: dict[str, Any], words: tuple[str, ...]
) -> None:
    pem = issued(HOST)
    values = {
        "garbage": "not pem at all",
        "mismatch": other_key(),
        "stranger": issued("x.example.com", intermediate=True).cabundle,
        "big": "x" * 70_000,
    }
    body: dict[str, Any] = {"crt": pem.crt, "key": pem.key}
    body.update({k: values.get(v, v) if isinstance(v, str) else v for k, v in change.items()})
    message = refused(await api.client.post("/account/ssl/new", json=body), 400, *words)
    assert pem.key.splitlines()[1][:20] not in message
    assert await cert_count(api) == 0


async def test_a_1_mib_pem_is_413(api: ApiHarness) -> None:
    pem = issued(HOST)
    huge = pem.crt * (1024 * 1024 // len(pem.crt) + 1)
    response = await api.client.post("/account/ssl/new", json={"crt": huge, "key": pem.key})
    refused(response, 413, "1 MiB")
    assert await cert_count(api) == 0


async def test_update_replaces_or_renames(api: ApiHarness) -> None:
    cert = await upload(api)
    renamed = ok(await api.client.post(f"/account/ssl/{cert['id']}", json={"name": "new name"}))
    assert renamed["message"] == "Update successful"
    assert renamed["cert"]["name"] == "new name" and renamed["cert"]["crt"] == cert["crt"]
    pem = issued("other.example.com")
    replaced = ok(
        await api.client.post(f"/account/ssl/{cert['id']}", json={"crt": pem.crt, "key": pem.key})
    )["cert"]
    assert (replaced["id"], replaced["domain"], replaced["name"]) == (
        cert["id"],
        "other.example.com",
        "new name",
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"crt": "C"}, ("crt and key",)),
        ({"key": "K"}, ("crt and key",)),
        ({"cabundle": ""}, ("cabundle: send it with crt and key",)),
        ({}, ("nothing to change",)),
        ({"name": " "}, ("name: must not be empty",)),
        ({"crt": "C", "key": "mismatch"}, ("key: does not match",)),
    ],
)
async def test_bad_updates_are_400_and_change_nothing(
    api: ApiHarness, body: dict[str, Any], words: tuple[str, ...]
) -> None:
    cert = await upload(api)
    pem = issued(HOST)
    body = {
        k: {"C": pem.crt, "K": pem.key, "mismatch": other_key()}.get(v, v) for k, v in body.items()
    }
    refused(await api.client.post(f"/account/ssl/{cert['id']}", json=body), 400, *words)
    assert ok(await api.client.get(f"/account/ssl/{cert['id']}"))["cert"] == cert


async def test_unknown_and_malformed_ids(api: ApiHarness) -> None:
    refused(await api.client.get("/account/ssl/99"), 404, "certificate 99 not found")
    refused(await api.client.delete("/account/ssl/99"), 404)
    refused(await api.client.get("/account/ssl/abc"), 400, "positive integer")
    refused(await api.client.get("/account/ssl/new"), 405)


async def test_delete_is_refused_while_a_zone_uses_it(api: ApiHarness) -> None:
    cert = await upload(api)
    zone = await api.create(alias="cdn", cnames=HOST, ssl={"enabled": "Y", "certid": cert["id"]})
    assert zone["ssl"]["certid"] == cert["id"] and zone["ssl"]["enabled"] == "Y"
    shown = ok(await api.client.get(f"/account/ssl/{cert['id']}"))["cert"]
    assert (shown["installs"], shown["zones"]) == (1, [zone["id"]])
    refused(await api.client.delete(f"/account/ssl/{cert['id']}"), 409, f"zone {zone['id']}")
    refused(await api.client.post(f"/account/ssl/{cert['id']}", json={"_METHOD": "DELETE"}), 409)
    ok(
        await api.client.post(
            f"/zones/http/pull/{zone['id']}/ssl", json={"enabled": "N", "certid": 0}
        )
    )
    gone = ok(await api.client.post(f"/account/ssl/{cert['id']}", json={"_METHOD": "delete"}))
    assert gone["message"] == "Certificate Deleted"
    assert await cert_count(api) == 0


async def test_zone_ssl_block_defaults_and_answers(api: ApiHarness) -> None:
    zone = await api.create()
    assert zone["ssl"] == {
        "enabled": "N",
        "http2": "N",
        "redirect": "N",
        "mode": "default",
        "certid": 0,
        "warning": "",
    }
    assert zone["warnings"] is None
    cert = await upload(api, f"*.{zone['fqdn'].split('.', 1)[1]}")
    body = {"enabled": True, "http2": "y", "redirect": "Y", "mode": "s", "certid": str(cert["id"])}
    changed = ok(await api.client.post(f"/zones/http/pull/{zone['id']}/ssl", json=body))
    assert changed["message"] == "Zone updated successfully"
    assert changed["zone"]["ssl"] == {
        "enabled": "Y",
        "http2": "Y",
        "redirect": "Y",
        "mode": "S",
        "certid": cert["id"],
        "warning": "",
    }
    assert changed["zone"]["warnings"] is None  # the wildcard covers the fqdn
    # 5centscdn's example: "" leaves a flag alone, warning false, certid null is none
    again = await api.client.post(
        f"/zones/http/pull/{zone['id']}",
        json={"ssl": {"enabled": "", "warning": False, "http2": False}},
    )
    assert ok(again)["zone"]["ssl"]["enabled"] == "Y"
    assert ok(again)["zone"]["ssl"]["http2"] == "N"
    # the zone's own GET answer sent back whole is accepted
    whole = ok(await api.client.get(f"/zones/http/pull/{zone['id']}"))["zone"]["ssl"]
    ok(await api.client.post(f"/zones/http/pull/{zone['id']}/ssl", json={"ssl": whole}))


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ({"enabled": "Y"}, ("ssl.enabled", "certid", "--acme-directory")),
        ({"certid": 999}, ("ssl.certid: no certificate 999",)),
        ({"warning": "fake"}, ("ssl.warning is read-only",)),
        ({"enabled": "maybe"}, ("enabled",)),
        ({"mode": "X"}, ("mode",)),
        ({"certid": -1}, ("certid",)),
        ({"certid": True}, ("certid",)),
        ({"zerossl": "Y"}, ("unknown field",)),
    ],
)
async def test_bad_ssl_blocks_are_400_and_change_nothing(
    api: ApiHarness, block: dict[str, Any], words: tuple[str, ...]
) -> None:
    zone = await api.create()
    for path, body in (
        (f"/zones/http/pull/{zone['id']}", {"ssl": block}),
        (f"/zones/http/pull/{zone['id']}/ssl", block),
        ("/zones/http/pull/new", {"name": "n", "origin": "http://o.test", "ssl": block}),
    ):
        refused(await api.client.post(path, json=body), 400, *words)
    assert await api.zones() == [zone]


async def test_enabled_without_certid_with_an_acme_directory(tmp_path: Any) -> None:
    settings = api_settings_for(tmp_path / "data", acme_directory="https://acme.test/dir")
    harness = await _harness(settings)
    async with harness.client:
        zone = await harness.create(ssl={"enabled": "Y"})
        assert (zone["ssl"]["enabled"], zone["ssl"]["certid"]) == ("Y", 0)


async def _harness(settings: Settings) -> ApiHarness:
    from pullzone.control.app import create_app
    from pullzone.control.keys import ensure_admin_key
    from pullzone.control.log import LocalLog

    async def ignore(event: Any) -> None:
        return None

    app = create_app(settings, LocalLog(settings, ignore))
    ensure_admin_key(app.state.control.conn, settings)
    harness = ApiHarness(app, settings, httpx.AsyncClient())
    harness.client = harness.client_with("unit-admin-key-0123456789")
    return harness


async def test_inline_certificate_on_the_zone_ssl_route(api: ApiHarness) -> None:
    zone = await api.create(alias="shop", cnames=HOST)
    pem = issued(HOST, zone["fqdn"])
    body = {"enabled": "Y", "http2": "Y", "crt": pem.crt, "key": pem.key, "cabundle": ""}
    changed = ok(await api.client.post(f"/zones/http/pull/{zone['id']}/ssl", json=body))["zone"]
    certid = changed["ssl"]["certid"]
    assert certid > 0 and changed["ssl"]["enabled"] == "Y" and changed["warnings"] is None
    cert = ok(await api.client.get(f"/account/ssl/{certid}"))["cert"]
    assert (cert["name"], cert["zones"], cert["key"]) == ("shop", [zone["id"]], REDACTED)


async def test_inline_certificate_refusals_store_nothing(api: ApiHarness) -> None:
    zone = await api.create()
    pem = issued(HOST)
    url = f"/zones/http/pull/{zone['id']}/ssl"
    refused(await api.client.post(url, json={"crt": pem.crt, "key": other_key()}), 400, "key:")
    refused(await api.client.post(url, json={"crt": pem.crt}), 400, "key: is required")
    refused(await api.client.post(url, json={"crt": pem.crt, "key": pem.key, "certid": 5}), 400)
    refused(await api.client.post(url, json={"crt": pem.crt, "key": pem.key, "warning": "x"}), 400)
    assert await cert_count(api) == 0
    assert await api.zones() == [zone]


async def test_a_certificate_not_covering_the_zone_is_a_warning(api: ApiHarness) -> None:
    cert = await upload(api, "elsewhere.example.org")
    zone = await api.create(alias="w", cnames=HOST, ssl={"enabled": "Y", "certid": cert["id"]})
    (warning,) = zone["warnings"]
    assert f"certificate {cert['id']}" in warning and HOST in warning and zone["fqdn"] in warning


async def test_keys_for_part_of_the_account_may_not_manage_certificates(
    api: ApiHarness,
) -> None:
    zone = await api.create()
    conn = api.app.state.control.conn
    for scope in ({"zones": [zone["id"]]}, {"purge_only": True}):
        secret, _ = stored_key(conn, "scoped", **scope)  # type: ignore[arg-type]
        async with api.client_with(secret) as client:
            refused(await client.get("/account/ssl"), 403, "account certificates")
            refused(await client.post("/account/ssl/new", json={}), 403)
    secret, _ = stored_key(conn, "full")
    async with api.client_with(secret) as client:
        ok(await client.get("/account/ssl"))


async def test_control_db_is_private(api: ApiHarness) -> None:
    await upload(api)
    for suffix in ("", "-wal", "-shm"):
        path = f"{api.settings.control_db}{suffix}"
        if os.path.exists(path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
