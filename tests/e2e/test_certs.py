"""HTTPS certificates against a real `pullzone serve`: the account API (`/v2/account/ssl`),
the zone's `ssl` block, the SDK and the CLI, with certificates from a trustme CA issued for
the zones' hostnames; and that control.db, which holds the private keys, is 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from certs_support import issued, other_key
from origin import Origin
from server import API_KEY, Server
from test_cli import cli

from pullzone import ApiError, Client
from pullzone.client import Certificate, SslPolicy

REDACTED = "--- redacted ---"


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def error(response: Any, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["result"] == "error", body
    if status in (401, 403):  # 5centscdn's shape beside ours, the same message
        assert set(body) == {"result", "message", "status", "errors"}, body
        assert body["status"] == "error", body
        assert body["errors"] == [{"code": status, "message": body["message"]}], body
    else:
        assert set(body) == {"result", "message"}, body
    for word in words:
        assert word in body["message"], body["message"]
    return str(body["message"])


def cert_ids(server: Server) -> set[int]:
    return {c["id"] for c in ok(server.api.get("/account/ssl"))["certs"]}


def test_certificate_lifecycle_over_the_api(server: Server, origin: Origin) -> None:
    zone = server.create_zone(origin.url, alias="tls1", cnames="tls1.example.net")
    pem = issued(zone["fqdn"], "tls1.example.net", intermediate=True)
    before = cert_ids(server)
    answer = ok(
        server.api.post(
            "/account/ssl/new",
            json={
                "_METHOD": "PUT",
                "name": "tls1",
                "crt": pem.crt,
                "key": pem.key,
                "cabundle": pem.cabundle,
            },
        )
    )
    assert answer["message"] == "Operation completed successfully"
    cert = answer["cert"]
    assert cert["key"] == REDACTED and cert["sans"] == [zone["fqdn"], "tls1.example.net"]
    assert cert_ids(server) == before | {cert["id"]}
    shown = ok(server.api.get(f"/account/ssl/{cert['id']}"))["cert"]
    assert shown["key"] == REDACTED and pem.key.splitlines()[1] not in str(shown)

    renamed = ok(server.api.post(f"/account/ssl/{cert['id']}", json={"name": "renamed"}))
    assert (renamed["message"], renamed["cert"]["name"]) == ("Update successful", "renamed")

    body = {"enabled": "Y", "http2": "Y", "redirect": "N", "certid": cert["id"]}
    set_ssl = ok(server.api.post(f"/zones/http/pull/{zone['id']}/ssl", json=body))
    assert set_ssl["zone"]["ssl"]["certid"] == cert["id"]
    assert set_ssl["zone"]["ssl"]["enabled"] == "Y" and set_ssl["zone"]["warnings"] is None
    shown = ok(server.api.get(f"/zones/http/pull/{zone['id']}"))["zone"]
    assert shown["ssl"] == set_ssl["zone"]["ssl"]
    assert ok(server.api.get(f"/account/ssl/{cert['id']}"))["cert"]["installs"] == 1

    error(server.api.delete(f"/account/ssl/{cert['id']}"), 409, f"zone {zone['id']}")
    ok(
        server.api.post(
            f"/zones/http/pull/{zone['id']}", json={"ssl": {"enabled": "N", "certid": 0}}
        )
    )
    assert ok(server.api.delete(f"/account/ssl/{cert['id']}"))["result"] == "success"
    assert cert_ids(server) == before


def test_inline_certificate_on_the_zone_ssl_route(server: Server, origin: Origin) -> None:
    zone = server.create_zone(origin.url, alias="tls2")
    pem = issued(zone["fqdn"])
    body = {"enabled": True, "crt": pem.crt, "key": pem.key}
    answer = ok(server.api.post(f"/zones/http/pull/{zone['id']}/ssl", json=body))
    certid = answer["zone"]["ssl"]["certid"]
    cert = ok(server.api.get(f"/account/ssl/{certid}"))["cert"]
    assert (cert["name"], cert["zones"], cert["key"]) == ("tls2", [zone["id"]], REDACTED)


def test_a_certificate_for_other_names_gives_a_warning(server: Server, origin: Origin) -> None:
    zone = server.create_zone(origin.url, alias="tls3")
    pem = issued("unrelated.example.org")
    body = {"enabled": "Y", "crt": pem.crt, "key": pem.key}
    answer = ok(server.api.post(f"/zones/http/pull/{zone['id']}/ssl", json=body))
    (warning,) = answer["zone"]["warnings"]
    assert zone["fqdn"] in warning and "does not cover" in warning


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"crt": "not pem"}, 400, ("crt is not a PEM certificate",)),
        ({"key": "not pem"}, 400, ("key is not a PEM private key",)),
        ({"key": "OTHER"}, 400, ("key: does not match the certificate",)),
        ({"cabundle": "STRANGER"}, 400, ("cabundle: the chain does not verify",)),
        ({"crt": "HUGE"}, 413, ("1 MiB",)),
    ],
)
def test_bad_uploads_store_nothing(
    server: Server, fields: dict[str, str], status: int, words: tuple[str, ...]
) -> None:
    pem = issued("bad.example.com")
    values = {
        "OTHER": other_key(),
        "STRANGER": issued("x.example.com", intermediate=True).cabundle,
        "HUGE": pem.crt * (1024 * 1024 // len(pem.crt) + 1),
    }
    body = {"crt": pem.crt, "key": pem.key, **{k: values.get(v, v) for k, v in fields.items()}}
    before = cert_ids(server)
    message = error(server.api.post("/account/ssl/new", json=body), status, *words)
    assert pem.key.splitlines()[1][:20] not in message
    assert cert_ids(server) == before


def test_enabled_without_a_certificate_is_400(server: Server, origin: Origin) -> None:
    zone = server.create_zone(origin.url, alias="tls4")
    response = server.api.post(f"/zones/http/pull/{zone['id']}/ssl", json={"enabled": "Y"})
    error(response, 400, "ssl.enabled", "--acme-directory")
    assert ok(server.api.get(f"/zones/http/pull/{zone['id']}"))["zone"] == zone


def test_control_db_and_its_wal_are_private(server: Server) -> None:
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{server.data_dir / 'control.db'}{suffix}")
        if path.exists():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_the_server_log_never_has_a_key(server: Server) -> None:
    pem = issued("logged.example.com")
    server.api.post("/account/ssl/new", json={"crt": pem.crt, "key": other_key()})
    ok(server.api.post("/account/ssl/new", json={"crt": pem.crt, "key": pem.key}))
    assert pem.key.splitlines()[1] not in server.output()


def test_sdk_certificate_calls(server: Server, origin: Origin) -> None:
    zone = server.create_zone(origin.url, alias="tls5")
    pem = issued(zone["fqdn"])
    with Client(base_url=server.api_url, api_key=API_KEY) as client:
        cert = client.certs.upload("sdk", pem.crt, pem.key)
        assert isinstance(cert, Certificate) and cert.sans == (zone["fqdn"],)
        assert client.certs.get(cert.id) == cert
        assert cert in client.certs.list()
        assert client.certs.update(cert.id, name="sdk2").name == "sdk2"
        changed = client.zones.update_ssl(zone["id"], enabled=True, certid=cert.id)
        assert changed.ssl == SslPolicy(enabled=True, certid=cert.id)
        with pytest.raises(ApiError) as caught:
            client.certs.delete(cert.id)
        assert caught.value.status == 409
        client.zones.update_ssl(zone["id"], enabled=False, certid=0)
        client.certs.delete(cert.id)
        with pytest.raises(ApiError) as caught:
            client.certs.upload("bad", pem.crt, other_key())
        assert caught.value.status == 400 and "key: does not match" in caught.value.message


def test_cli_certificate_commands(server: Server, origin: Origin, tmp_path: Path) -> None:
    zone = server.create_zone(origin.url, alias="tls6")
    pem = issued(zone["fqdn"])
    (tmp_path / "crt.pem").write_text(pem.crt)
    (tmp_path / "key.pem").write_text(pem.key)
    (tmp_path / "other.pem").write_text(other_key())
    crt, key = str(tmp_path / "crt.pem"), str(tmp_path / "key.pem")

    uploaded = cli(server, "certs", "upload", "cli cert", "--crt", crt, "--key", key)
    assert uploaded.returncode == 0, uploaded.stderr
    assert "Certificate uploaded" in uploaded.stdout and "PRIVATE" not in uploaded.stdout
    cert_id = next(
        c["id"] for c in ok(server.api.get("/account/ssl"))["certs"] if c["name"] == "cli cert"
    )

    listed = cli(server, "certs", "list")
    assert listed.returncode == 0 and "cli cert" in listed.stdout and zone["fqdn"] in listed.stdout
    shown = cli(server, "certs", "show", str(cert_id))
    assert shown.returncode == 0 and zone["fqdn"] in shown.stdout

    ssl = cli(server, "zones", "ssl", "tls6", "--enabled", "Y", "--certid", str(cert_id))
    assert ssl.returncode == 0, ssl.stderr
    assert ok(server.api.get(f"/zones/http/pull/{zone['id']}"))["zone"]["ssl"]["certid"] == cert_id
    refused = cli(server, "certs", "delete", str(cert_id), "--yes")
    assert refused.returncode == 1 and "HTTP 409" in refused.stderr
    cli(server, "zones", "ssl", "tls6", "--enabled", "N", "--certid", "0")
    deleted = cli(server, "certs", "delete", str(cert_id), "--yes")
    assert deleted.returncode == 0, deleted.stderr

    bad = cli(server, "certs", "upload", "x", "--crt", crt, "--key", str(tmp_path / "other.pem"))
    assert bad.returncode == 1 and "key: does not match" in bad.stderr
    usage = cli(server, "certs", "show", "abc")
    assert usage.returncode == 2
