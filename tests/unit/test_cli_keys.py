"""`pullzone keys create|list|revoke`: what they send, their usage errors, and what they
print, against the real API app served on a loopback port."""

from __future__ import annotations

import json
import re

import pytest
from cli_support import run, said
from conftest import LIVE_ADMIN_KEY

from pullzone.cli.keys import key_request

ADMIN_KEY = LIVE_ADMIN_KEY


# --- what is sent ------------------------------------------------------------------------------


def test_no_zone_option_means_every_zone() -> None:
    call = key_request("ci", None, False)
    assert (call.method, call.path, call.json) == (
        "POST",
        "/keys",
        {"name": "ci", "purge_only": False},
    )


def test_zones_and_purge_only() -> None:
    call = key_request("deploy-bot", [42, 43], True)
    assert call.json == {"name": "deploy-bot", "zones": [42, 43], "purge_only": True}


# --- usage errors: exit 2, nothing sent --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create"], "Missing option '--name'"),
        (["keys", "create", "--name", " "], "give the key a name"),
        (["keys", "create", "--name", "n", "--zone", ""], "not an empty string"),
        (["keys", "revoke"], "Missing argument 'ID'"),
        (["keys", "revoke", "../zones/http/pull/1"], "key id must be an id as listed"),
        (["keys", "revoke", "key 1", "--yes"], "pullzone keys list"),
        (["keys", "frobnicate"], "No such command"),
    ],
)
def test_usage_errors(args: list[str], message: str, closed_url: str) -> None:
    result = run(*args, env={"PULLZONE_API_URL": closed_url})
    assert result.exit_code == 2
    assert message in said(result.stderr)
    assert "cannot reach" not in result.output


def test_keys_alone_shows_help() -> None:
    result = run("keys")
    assert result.exit_code == 2
    assert all(word in result.output for word in ("create", "list", "revoke"))


def test_revoke_asks_first(closed_url: str) -> None:
    result = run("keys", "revoke", "key_0123456789ab", env={"PULLZONE_API_URL": closed_url})
    assert result.exit_code == 1
    assert "Revoke API key key_0123456789ab?" in result.output
    assert "cannot reach" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["keys", "list", "--json"],
        ["keys", "create", "--name", "n"],
        ["keys", "create", "--name", "n", "--zone", "my-site"],
        ["keys", "revoke", "key_0123456789ab", "--yes"],
    ],
)
def test_unreachable_api(args: list[str], closed_url: str) -> None:
    result = run(*args, env={"PULLZONE_API_URL": closed_url})
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"error: cannot reach the API at {closed_url}: " in result.stderr


# --- against the real API ----------------------------------------------------------------------


def as_admin(url: str) -> dict[str, str]:
    """The environment of an operator with the admin key, in a terminal wide enough for
    the key table's rows to stay on one line each."""
    return {"PULLZONE_API_URL": url, "PULLZONE_API_KEY": ADMIN_KEY, "COLUMNS": "200"}


def test_create_prints_the_secret_alone_on_stdout(live_api: str) -> None:
    result = run("keys", "create", "--name", "ci", env=as_admin(live_api))
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert result.stdout == secret + "\n" and len(secret) >= 40
    told = said(result.stderr)
    assert "Key Created: id key_" in told
    assert "(ci), zones: all, may: read, update, purge, delete" in told
    assert "shown only this once" in told
    assert secret not in result.stderr
    # the secret is a working key
    listed = run("zones", "list", env={"PULLZONE_API_URL": live_api, "PULLZONE_API_KEY": secret})
    assert listed.exit_code == 0, listed.output


def test_create_for_zones_by_reference_purge_only(live_api: str) -> None:
    env = as_admin(live_api)
    for alias in ("one", "two"):
        made = run(
            "zones", "create", "--name", alias, "--origin", "http://o.test", "--alias", alias,
            env=env,
        )  # fmt: skip
        assert made.exit_code == 0, made.output
    result = run(
        "keys", "create", "--name", "bot", "--zone", "two", "--zone", "1", "--purge-only",
        "--json", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["message"] == "Key Created" and answer["secret"]
    assert (answer["key"]["zones"], answer["key"]["purge_only"]) == ([1, 2], True)
    told = said(run("keys", "create", "--name", "b2", "--zone", "one", env=env).stderr)
    assert "zones: 1, may: read, update, purge, delete" in told


def test_create_for_a_zone_that_does_not_exist(live_api: str) -> None:
    result = run("keys", "create", "--name", "n", "--zone", "9", env=as_admin(live_api))
    assert result.exit_code == 1
    assert "error: zones: no zone 9;" in said(result.stderr) and "(HTTP 400)" in result.stderr
    result = run("keys", "create", "--name", "n", "--zone", "nowhere", env=as_admin(live_api))
    assert result.exit_code == 1
    assert "no zone has the id, alias, hostname or name 'nowhere'" in said(result.stderr)
    assert result.stdout == ""


def test_list_and_revoke(live_api: str) -> None:
    env = as_admin(live_api)
    created = json.loads(run("keys", "create", "--name", "ci", "--json", env=env).stdout)
    key_id = created["key"]["id"]
    listed = run("keys", "list", env=env)
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[1]: said(line) for line in listed.stdout.splitlines() if "key_" in line}
    assert set(rows) == {key_id}
    assert re.search(
        r"ci all read, update, purge, delete \d{4}-\d\d-\d\d \d\d:\d\d:\d\d active", rows[key_id]
    )
    admin_row = [said(line) for line in listed.stdout.splitlines() if "everything" in line]
    assert len(admin_row) == 1 and admin_row[0].startswith("admin admin all everything")
    assert created["secret"] not in listed.output and ADMIN_KEY not in listed.output

    revoked = run("keys", "revoke", key_id, env=env, input="y\n")
    assert revoked.exit_code == 0, revoked.output
    assert f"Key Revoked: {key_id}" in said(revoked.stdout)
    keys = {k["id"]: k for k in json.loads(run("keys", "list", "--json", env=env).stdout)["keys"]}
    assert keys[key_id]["revoked_at"] is not None and keys["admin"]["revoked_at"] is None
    assert re.search(rf"{key_id} .* revoked \d{{4}}-", said(run("keys", "list", env=env).stdout))

    again = run("keys", "revoke", key_id, "--yes", env=env)
    assert again.exit_code == 1
    assert f"API key {key_id} is already revoked" in said(again.stderr)
    admin = run("keys", "revoke", "admin", "--yes", env=env)
    assert admin.exit_code == 1
    assert "the admin key cannot be revoked" in said(admin.stderr)


def test_a_key_that_is_not_the_admin_key(live_api: str) -> None:
    secret = json.loads(
        run("keys", "create", "--name", "ci", "--json", env=as_admin(live_api)).stdout
    )["secret"]
    result = run("keys", "list", env={"PULLZONE_API_URL": live_api, "PULLZONE_API_KEY": secret})
    assert result.exit_code == 1
    assert "only the admin key may manage API keys (HTTP 403)" in said(result.stderr)
