"""`pullzone prefetch ZONE` against a real server and origin: paths as arguments, a list of
2,500 in batches of 1,000 (`--from-file`), stdin with `--json`, a `*` refused before
anything is sent, and a failed batch with the re-run that goes on from it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from cli_support import command, said
from origin import Origin, Reply
from server import API_KEY, Server

Zone = dict[str, Any]


def cli(server: Server, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return command(server.api_url, *args, key=API_KEY, input=input)


def objects(origin: Origin, base: str, count: int) -> list[str]:
    """`count` cacheable objects on the origin, under `base`."""
    paths = [f"{base}/{n}.css" for n in range(1, count + 1)]
    for p in paths:
        origin.route(p, Reply(headers=[("Cache-Control", "max-age=600")], body=p.encode()))
    return paths


def stored(server: Server, origin: Origin, zone: Zone, paths: list[str]) -> None:
    """Each path reached the origin once, and the edge answers it from its cache."""
    assert [p for p in paths if origin.count(p) != 1] == []
    for p in paths:
        answer = server.get(zone["fqdn"], p)
        assert (answer.headers["x-cache"], answer.content) == ("HIT", p.encode()), p
    assert [p for p in paths if origin.count(p) != 1] == []


def test_paths_as_arguments(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    paths = objects(origin, path, 3)

    done = cli(server, "prefetch", str(zone["id"]), *paths)

    assert done.returncode == 0, done.stderr
    assert said(done.stdout) == f"Zone Prefetched: zone {zone['id']}, 3 paths"
    assert done.stderr == ""
    stored(server, origin, zone, paths)


def test_2500_lines_in_3_requests(
    server: Server, origin: Origin, zone: Zone, path: str, tmp_path: Path
) -> None:
    paths = objects(origin, path, 2500)
    listed = tmp_path / "paths.txt"
    listed.write_text("# after the deploy\n\n" + "\n".join(paths) + "\n")

    done = cli(server, "prefetch", zone["alias"], "--from-file", str(listed))

    assert done.returncode == 0, done.stderr
    assert said(done.stdout) == (
        f"Zone Prefetched: zone {zone['id']}, 2500 paths from {listed} (lines 1-2502) in 3 requests"
    )
    assert done.stderr == ""  # stderr is no terminal: no progress bar
    stored(server, origin, zone, paths)


def test_stdin_and_json(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    paths = objects(origin, path, 1200)

    done = cli(
        server, "prefetch", str(zone["id"]), "--from-file", "-", "--json", input="\n".join(paths)
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {k: v for k, v in report.items() if k != "prefetches"} == {
        "result": "success",
        "message": "Zone Prefetched",
        "zone": zone["id"],
        "files": 1200,
        "requests": 2,
        "lines": [1, 1200],
    }
    answers = report["prefetches"]
    assert [(a["message"], a["files"]) for a in answers] == [
        ("Zone Prefetched", 1000),
        ("Zone Prefetched", 200),
    ]
    assert answers[0]["id"] < answers[1]["id"]
    stored(server, origin, zone, [paths[0], paths[999], paths[1000], paths[-1]])

    single = cli(server, "prefetch", str(zone["id"]), paths[0], "--json")
    assert single.returncode == 0, single.stderr
    body = json.loads(single.stdout)
    assert (body["result"], body["message"], body["files"]) == ("success", "Zone Prefetched", 1)


def test_a_star_is_refused_before_anything_is_sent(
    server: Server, origin: Origin, zone: Zone, path: str, tmp_path: Path
) -> None:
    paths = objects(origin, path, 3)
    listed = tmp_path / "paths.txt"
    listed.write_text(f"{paths[0]}\n# styles\n{path}/*.css\n{paths[1]}\n")

    refused = cli(server, "prefetch", str(zone["id"]), "--from-file", str(listed))

    assert refused.returncode == 2
    assert refused.stdout == ""
    message = said(refused.stderr)
    assert f"{listed}, line 3: '{path}/*.css' has a *" in message, message
    assert "nothing was prefetched" in message
    argument = cli(server, "prefetch", str(zone["id"]), paths[2], f"{path}/*")
    assert argument.returncode == 2
    assert f"'{path}/*' has a *" in said(argument.stderr)
    assert [origin.count(p) for p in paths] == [0, 0, 0]  # nothing was sent


def test_a_failed_batch_and_the_rerun_that_goes_on(
    server: Server, origin: Origin, zone: Zone, path: str, tmp_path: Path
) -> None:
    paths = objects(origin, path, 2500)
    lines = list(paths)
    lines[1500] = "https://elsewhere.example/a.css"  # line 1,501: in batch 2, refused
    listed = tmp_path / "paths.txt"
    listed.write_text("\n".join(lines) + "\n")

    failed = cli(server, "prefetch", str(zone["id"]), "--from-file", str(listed))

    assert failed.returncode == 1
    assert failed.stdout == ""
    message = said(failed.stderr)
    assert message.startswith(
        "error: batch 1 of 3 applied (lines 1-1000); batch 2 failed (lines 1001-2000): "
    ), message
    assert "elsewhere.example" in message and "(HTTP 400)" in message
    assert message.endswith(f"re-run with --from-file {listed} --skip 1000 to continue")
    assert [origin.count(p) for p in (paths[0], paths[999])] == [1, 1]
    assert [p for p in paths[1000:] if origin.count(p)] == []  # batches 2 and 3 never went out

    listed.write_text("\n".join(paths) + "\n")
    rerun = cli(server, "prefetch", str(zone["id"]), "--from-file", str(listed), "--skip", "1000")
    assert rerun.returncode == 0, rerun.stderr
    assert "1500 paths from" in rerun.stdout and "(lines 1001-2500) in 2 requests" in said(
        rerun.stdout
    )
    stored(server, origin, zone, paths)  # each fetched once: nothing twice, nothing missed
