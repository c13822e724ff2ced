"""`pullzone zones …` and `pullzone purge …` against a real server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from cli_support import command
from origin import Origin, Reply
from server import API_KEY, Server


def cli(server: Server, *args: str, key: str = API_KEY) -> subprocess.CompletedProcess[str]:
    return command(server.api_url, *args, key=key)


def test_zone_lifecycle_through_the_cli(server: Server, origin: Origin) -> None:
    created = cli(
        server,
        "zones",
        "create",
        "--name",
        "cli site",
        "--alias",
        "clisite",
        "--origin",
        origin.url,
        "--cnames",
        "cli.example.net",
        "--cache",
        "1h",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    zone: dict[str, Any] = json.loads(created.stdout)["zone"]
    assert (zone["fqdn"], zone["cnamesArr"], zone["cache"]["cache"]) == (
        "clisite.localhost",
        ["cli.example.net"],
        "1h",
    )

    listed = cli(server, "zones", "list")
    assert listed.returncode == 0 and "clisite.localhost" in listed.stdout

    updated = cli(server, "zones", "update", str(zone["id"]), "--querystring", "N", "--json")
    assert json.loads(updated.stdout)["zone"]["cache"]["querystring"] == "N"

    shown = cli(server, "zones", "show", "clisite", "--json")
    assert json.loads(shown.stdout)["zone"]["id"] == zone["id"]

    deleted = cli(server, "zones", "delete", str(zone["id"]), "--yes")
    assert deleted.returncode == 0
    assert server.api.get(f"/zones/http/pull/{zone['id']}").status_code == 404


def test_purge_through_the_cli(
    server: Server, origin: Origin, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"x"))
    server.get(zone["fqdn"], path)
    done = cli(server, "purge", str(zone["id"]), path, "--delete")
    assert done.returncode == 0, done.stderr
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"


def test_cli_exit_codes(server: Server) -> None:
    assert cli(server, "zones", "show", "999999").returncode == 1
    assert cli(server, "zones", "list", key="wrong").returncode == 1
    assert cli(server, "purge", "1").returncode == 2  # nothing to purge named
