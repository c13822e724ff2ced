"""5centscdn's API key routes (`/v2/account/api`) against a real `pullzone serve`: its own
curl and Python examples, what each permission lets a key do, 401 and 403 in 5centscdn's
shape, keys that survive a restart, a control.db from before keys had permissions, and two
API nodes of a cluster agreeing on a key's changes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from nats_servers import NatsServer
from origin import Origin
from server import API_KEY, Server
from test_cluster import node, running, until


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def refused(response: Any, status: int, *words: str) -> str:
    """The message of a 401/403, which carries 5centscdn's shape beside ours."""
    assert response.status_code == status, response.text
    body = response.json()
    message = body["message"]
    assert body == {
        "result": "error",
        "message": message,
        "status": "error",
        "errors": [{"code": status, "message": message}],
    }
    for word in words:
        assert word in message, message
    return str(message)


def curl(*args: str) -> dict[str, Any]:
    done = subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_5centscdns_curl_examples_create_list_update_delete(server: Server) -> None:
    base = server.api_url
    headers = ["-H", "Content-Type: application/json", "-H", f"X-API-Key: {API_KEY}"]
    created = curl(
        "-X",
        "POST",
        f"{base}/account/api/new",
        *headers,
        "-d",
        '{\n  "name": "My Application",\n  "description": "Used by the mobile app",\n'
        '  "permission[]": [\n    "read",\n    "update"\n  ],\n  "_METHOD": "PUT"\n}',
    )
    assert (created["result"], created["message"]) == ("success", "API Key Created")
    key_id = created["id"]
    assert isinstance(key_id, int)
    listed = curl("-X", "GET", f"{base}/account/api", *headers)
    [mine] = [k for k in listed["apikeys"] if k["id"] == key_id]
    assert (mine["name"], mine["description"], mine["permission"]) == (
        "My Application",
        "Used by the mobile app",
        ["read", "update"],
    )
    assert created["hash"] not in json.dumps(listed)
    updated = curl(
        "-X",
        "POST",
        f"{base}/account/api/{key_id}",
        *headers,
        "-d",
        '{"name": "My Application", "description": "Used by the mobile app", '
        '"permission[]": ["read", "update", "delete"]}',
    )
    assert updated == {"result": "success", "message": "API Key Updated"}
    shown = curl("-X", "GET", f"{base}/account/api/{key_id}", *headers)
    assert shown["apikey"]["permission"] == ["read", "update", "delete"]
    deleted = curl(
        "-X", "DELETE", f"{base}/account/api/{key_id}", *headers, "-d", '{"_METHOD": "DELETE"}'
    )
    assert deleted == {"result": "success", "message": "API Key Deleted."}
    gone = requests.get(f"{base}/zones/http/pull", headers={"X-API-Key": created["hash"]})
    refused(gone, 401, "unknown or revoked")


def test_5centscdns_python_example_and_what_each_permission_allows(
    server: Server, origin: Origin
) -> None:
    url = f"{server.api_url}/account/api/new"
    headers = {"Content-Type": "application/json", "X-API-Key": API_KEY}

    def key_with(*permission: str) -> dict[str, str]:
        data = {"name": "My Application", "description": "", "permission[]": list(permission)}
        response = requests.post(url, headers=headers, json={**data, "_METHOD": "PUT"})
        return {"X-API-Key": ok(response)["hash"]}

    zone = server.create_zone(origin.url, alias="acctkeys")
    path = f"{server.api_url}/zones/http/pull/{zone['id']}"
    new = {"name": "n", "origin": origin.url}

    reader = key_with("read")
    assert ok(requests.get(path, headers=reader))["zone"]["id"] == zone["id"]
    refused(requests.post(path, headers=reader, json={"name": "x"}), 403, "may not update")
    refused(requests.post(f"{path}/purge", headers=reader, json={"files": ["/a"]}), 403, "purge")
    refused(requests.delete(path, headers=reader), 403, "may not delete")

    updater = key_with("read", "update")
    assert ok(requests.post(path, headers=updater, json={"name": "renamed"}))["zone"]["name"] == (
        "renamed"
    )
    purged = ok(requests.post(f"{path}/purge", headers=updater, json={"files": ["/a"]}))
    assert purged["message"] == "Zone Purged"
    refused(requests.delete(path, headers=updater), 403, "may not delete")
    created = requests.post(f"{server.api_url}/zones/http/pull/new", headers=updater, json=new)
    refused(created, 403, "create permission")

    creator = key_with("create")
    made = ok(requests.post(f"{server.api_url}/zones/http/pull/new", headers=creator, json=new))
    deleter = key_with("delete")
    made_path = f"{server.api_url}/zones/http/pull/{made['zone']['id']}"
    refused(requests.get(made_path, headers=deleter), 403, "may not read")
    assert ok(requests.delete(made_path, headers=deleter))["message"] == "Zone Deleted"
    assert server.api.get(made_path).status_code == 404
    # none of them manages keys
    for key in (reader, updater, creator, deleter):
        refused(requests.get(f"{server.api_url}/account/api", headers=key), 403, "admin key")


def test_keys_and_their_permissions_survive_a_restart(tmp_path: Path) -> None:
    node = Server(tmp_path / "data", workers=1).start()
    try:
        answer = ok(
            node.api.post(
                "/account/api/new",
                json={"name": "ci", "description": "deploys", "permission[]": ["read"]},
            )
        )
        ok(node.api.post(f"/account/api/{answer['id']}", json={"permission[]": ["create"]}))
    finally:
        node.stop()
    node = Server(tmp_path / "data", workers=1).start()
    try:
        shown = ok(node.api.get(f"/account/api/{answer['id']}"))["apikey"]
        assert (shown["name"], shown["description"], shown["permission"]) == (
            "ci",
            "deploys",
            ["create"],
        )
        key = {"X-API-Key": answer["hash"]}
        new = {"name": "n", "origin": "http://127.0.0.1:9"}
        assert node.api.post("/zones/http/pull/new", json=new, headers=key).status_code == 200
        refused(node.api.get("/zones/http/pull/1", headers=key), 403, "may not read")
    finally:
        node.stop()


OLD_KEYS_TABLE = """
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    key_hash   TEXT NOT NULL UNIQUE,
    admin      INTEGER NOT NULL DEFAULT 0,
    zones      TEXT,
    purge_only INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


@pytest.mark.parametrize("purge_only", [False, True])
def test_a_key_in_a_control_db_from_before_permissions_keeps_its_meaning(
    tmp_path: Path, purge_only: bool
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    secret = "an-older-releases-key-0123456789"
    conn = sqlite3.connect(data / "control.db")
    conn.executescript(OLD_KEYS_TABLE)
    conn.execute(
        "INSERT INTO api_keys VALUES ('key_00000000abcd', 'old', ?, 0, NULL, ?, "
        "'2025-01-01 00:00:00', NULL)",
        (hashlib.sha256(secret.encode()).hexdigest(), int(purge_only)),
    )
    conn.commit()
    conn.close()
    node = Server(data, workers=1).start()
    try:
        zone = node.create_zone("http://127.0.0.1:9", alias="older")
        shown = ok(node.api.get(f"/account/api/{0xABCD}"))["apikey"]
        expected = ["read", "purge"] if purge_only else ["read", "update", "delete"]
        assert (shown["name"], shown["permission"], shown["description"]) == ("old", expected, "")
        key = {"X-API-Key": secret}
        path = f"/zones/http/pull/{zone['id']}"
        assert node.api.get(path, headers=key).status_code == 200
        purge = node.api.post(f"{path}/purge", json={"files": ["/a"]}, headers=key)
        assert purge.status_code == 200, purge.text
        changed = node.api.post(path, json={"name": "x"}, headers=key)
        if purge_only:
            refused(changed, 403, "may not update")
        else:
            assert changed.status_code == 200, changed.text
    finally:
        node.stop()


@pytest.mark.timeout(120)
def test_every_api_node_of_a_cluster_agrees_on_a_keys_changes(tmp_path: Path) -> None:
    """Created on one node, the key works on the other; changed there, the other enforces
    the change; deleted on the other, the first refuses it (each is an event of the
    stream)."""
    nats = NatsServer(tmp_path, "nats")
    one = node(tmp_path, "api-1", "api", [nats.url])
    two = node(tmp_path, "api-2", "api", [nats.url])
    try:
        nats.start()
        with running([one, two]):
            zone = one.create_zone("http://127.0.0.1:9", alias="clusterkeys")
            path = f"/zones/http/pull/{zone['id']}"
            made = ok(
                one.api.post("/account/api/new", json={"name": "c", "permission[]": ["read"]})
            )
            key = {"X-API-Key": made["hash"]}

            def status_on(server: Server, route: str = path) -> int:
                return server.api.get(route, headers=key).status_code

            until(lambda: status_on(two) == 200, 10, "the new key working on api-2")
            changed = {"permission[]": ["update"], "description": "no read"}
            ok(one.api.post(f"/account/api/{made['id']}", json=changed))
            until(lambda: status_on(two) == 403, 10, "the key's change enforced on api-2")
            refused(two.api.get(path, headers=key), 403, "may not read")
            assert (
                ok(two.api.get(f"/account/api/{made['id']}"))["apikey"]["description"] == "no read"
            )
            renamed = two.api.post(path, json={"name": "renamed"}, headers=key)
            assert renamed.status_code == 200, renamed.text
            ok(two.api.delete(f"/account/api/{made['id']}"))
            until(lambda: status_on(one, "/zones/http/pull") == 401, 10, "the deletion on api-1")
            refused(one.api.get("/zones/http/pull", headers=key), 401, "unknown or revoked")
    finally:
        nats.stop()
