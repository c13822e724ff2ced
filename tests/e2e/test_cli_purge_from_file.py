"""`pullzone purge ZONE --from-file F` against a real server: 100,000 paths in batches the API
takes, counted in the purge history; a failed batch and the re-run that goes on from it;
stdin. Then the client commands test_cli.py leaves out (keys, --tag, --all) and their
failures (wrong key, unknown zone, no server)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from cli_support import command
from origin import Origin, Reply
from ports import free_port
from server import API_KEY, Server

Zone = dict[str, Any]


def cli(
    server: Server | None,
    *args: str,
    key: str = API_KEY,
    input: str | None = None,
    api_url: str | None = None,
) -> subprocess.CompletedProcess[str]:
    url = api_url or (server.api_url if server else "")
    return command(url, *args, key=key, input=input)


def said(text: str) -> str:
    """Output with line wrapping taken out, and ranges (1\u20137) as 1-7."""
    return " ".join(text.split()).replace("\u2013", "-")


def history(server: Server, zone: Zone) -> list[dict[str, Any]]:
    """The zone's purges, oldest first."""
    answer = server.api.get(f"/zones/http/pull/{zone['id']}/purges")
    assert answer.status_code == 200, answer.text
    return list(reversed(answer.json()["purges"]))


def long_paths(count: int) -> list[str]:
    """Paths of 107 characters: 9,532 fill a 1 MiB purge body, so 100,000 take 11 requests
    (10 by the 10,000-file limit alone)."""
    return [f"/videos/{n:06d}/" + "x" * 88 + ".mp4" for n in range(count)]


def test_100000_paths_in_11_requests(
    server: Server, origin: Origin, zone: Zone, tmp_path: Path
) -> None:
    paths = long_paths(100_000)
    for path in (paths[0], paths[-1]):
        origin.route(path, Reply(headers=[("Cache-Control", "max-age=3600")], body=b"v"))
        server.get(zone["fqdn"], path)
        assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    listed = tmp_path / "paths.txt"
    listed.write_text("# after the deploy\n\n" + "\n".join(paths) + "\n")

    done = cli(server, "purge", str(zone["id"]), "--from-file", str(listed), "--delete")

    assert done.returncode == 0, done.stderr
    assert said(done.stdout) == (
        f"Zone Purged: zone {zone['id']}, 100000 paths from {listed} (lines 1-100002) "
        "in 11 requests, hard purge (removed), 2 objects purged"
    )
    assert done.stderr == ""  # stderr is no terminal: no progress bar
    purges = history(server, zone)
    assert len(purges) == 11
    assert [len(p["files"]) for p in purges] == [9532] * 10 + [4680]
    assert [f for p in purges for f in p["files"]] == paths
    assert all(p["delete"] and not p["all"] for p in purges)
    for path in (paths[0], paths[-1]):
        assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"


def test_a_failed_batch_and_the_rerun_that_goes_on(
    server: Server, zone: Zone, tmp_path: Path
) -> None:
    paths = [f"/batch/{n}.png" for n in range(1, 30_001)]
    paths[25_000] = "/x/../y"  # line 25,001: in batch 3, refused by the server
    listed = tmp_path / "paths.txt"
    listed.write_text("\n".join(paths) + "\n")

    failed = cli(server, "purge", zone["alias"], "--from-file", str(listed))

    assert failed.returncode == 1
    assert failed.stdout == ""
    assert said(failed.stderr) == (
        "error: batches 1-2 of 3 applied (lines 1-20000); batch 3 failed (lines 20001-30000): "
        "'/x/../y' has a . or .. segment: give the path itself (HTTP 400); "
        f"re-run with --from-file {listed} --skip 20000 to continue"
    )
    purges = history(server, zone)
    assert len(purges) == 2
    assert [f for p in purges for f in p["files"]] == paths[:20_000]

    paths[25_000] = "/x/y"
    listed.write_text("\n".join(paths) + "\n")
    rerun = cli(server, "purge", zone["alias"], "--from-file", str(listed), "--skip", "20000")
    assert rerun.returncode == 0, rerun.stderr
    assert "10000 paths from" in rerun.stdout and "(lines 20001-30000) in 1 request," in said(
        rerun.stdout
    )
    purges = history(server, zone)
    assert len(purges) == 3  # nothing twice, nothing missed
    assert [f for p in purges for f in p["files"]] == paths


def test_paths_from_stdin(server: Server, zone: Zone) -> None:
    done = cli(
        server,
        "purge",
        str(zone["id"]),
        "--from-file",
        "-",
        "--json",
        input="/a.png\n# the styles\n/b.css\n\n/c.js\n",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["files"], report["requests"], report["lines"]) == (3, 1, [1, 5])
    assert report["purges"][0]["message"] == "Zone Purged"
    [purge] = history(server, zone)
    assert (purge["id"], purge["files"]) == (
        report["purges"][0]["id"],
        ["/a.png", "/b.css", "/c.js"],
    )


# --- the other client commands ------------------------------------------------------------------


def test_purge_by_tag_and_the_whole_zone(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60"), ("Surrogate-Key", "t1")]))
    server.get(zone["fqdn"], path)
    tagged = cli(server, "purge", str(zone["id"]), "--tag", "t1", "--delete")
    assert tagged.returncode == 0, tagged.stderr
    assert said(tagged.stdout) == (
        f"Zone Purged: zone {zone['id']}, 1 tag, hard purge (removed), 1 object purged"
    )
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"

    asked = cli(server, "purge", str(zone["id"]), "--all", input="n\n")
    assert asked.returncode == 1 and "every cached object" in asked.stderr
    whole = cli(server, "purge", str(zone["id"]), "--all", "--yes", "--json")
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["message"] == "Zone Purged"
    assert [(p["all"], p["tags"]) for p in history(server, zone)] == [(False, ["t1"]), (True, [])]


def test_keys_through_the_cli(server: Server, zone: Zone) -> None:
    created = cli(
        server, "keys", "create", "--name", "cli-bot", "--zone", zone["alias"], "--purge-only"
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert "Key Created" in created.stderr and "may: read, purge" in created.stderr

    listed = cli(server, "keys", "list", "--json")
    keys = {k["name"]: k for k in json.loads(listed.stdout)["keys"]}
    assert keys["cli-bot"]["zones"] == [zone["id"]]
    table = said(cli(server, "keys", "list").stdout)
    assert f"│ cli-bot │ {zone['id']} │ read, purge │" in table, table

    purged = cli(server, "purge", str(zone["id"]), "/a.png", key=secret)
    assert purged.returncode == 0, purged.stderr
    refused = cli(server, "zones", "update", str(zone["id"]), "--name", "x", key=secret)
    assert refused.returncode == 1 and "(HTTP 403)" in refused.stderr

    revoked = cli(server, "keys", "revoke", keys["cli-bot"]["id"], "--yes")
    assert revoked.returncode == 0, revoked.stderr
    after = cli(server, "purge", str(zone["id"]), "/a.png", key=secret)
    assert after.returncode == 1
    assert "error: unknown or revoked API key" in after.stderr and "(HTTP 401)" in after.stderr


def test_failures_exit_1_with_the_servers_message(server: Server, zone: Zone) -> None:
    wrong = cli(server, "purge", str(zone["id"]), "/a.png", key="wrong")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert said(wrong.stderr) == (
        "error: unknown or revoked API key: check the X-API-Key header (HTTP 401)"
    )
    unknown = cli(server, "purge", "999999", "/a.png")
    assert unknown.returncode == 1
    assert said(unknown.stderr) == "error: zone 999999 not found (HTTP 404)"
    named = cli(server, "zones", "show", "no-such-alias")
    assert named.returncode == 1 and "no zone has the id, alias" in said(named.stderr)
    usage = cli(server, "purge", str(zone["id"]), "--from-file", "-", "/a.png", input="/b\n")
    assert usage.returncode == 2


def test_no_server_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/v2"
    listed = tmp_path / "paths.txt"
    listed.write_text("/a\n/b\n")
    for args in (
        ["zones", "list"],
        ["purge", "3", "/a"],
        ["purge", "3", "--from-file", str(listed)],
    ):
        result = cli(None, "--retries", "1", *args, api_url=down)
        assert result.returncode == 1, args
        assert result.stdout == ""
        message = said(result.stderr)
        assert f"cannot reach the API at {down}: Connection refused (2 attempts)" in message
        assert "is `pullzone serve` running?" in message
