"""5centscdn customers' own clients against a real `pullzone serve`: the calls of
5centscdn's WordPress plugin in PHP (Guzzle, form bodies, `_METHOD`), and the API
reference's examples in Python, Node, Go and Ruby (tests/clients/). Each client changes
only the base URL and the key; its effect is checked through pullzone itself.

Each client runs twice: `BASE KEY ORIGIN` creates a zone, reads it, updates it (a cname),
and changes its cache and ssl blocks through their routes; then, once the test has
fetched objects through the edge, `BASE KEY ORIGIN ZONEID` purges two files and the whole
zone. The runtimes come from Debian (.ci/run installs them); a missing one fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from origin import Origin, Reply, Seen
from server import API_KEY, Server

CLIENTS_DIR = Path(__file__).parent.parent / "clients"
OBJECTS = ("/clients/a.css", "/clients/b.css")  # a.css is purged by name, b.css with the zone


@dataclass(frozen=True)
class Client:
    lang: str
    command: tuple[str, ...]
    hard: bool  # its whole-zone purge sends ?delete=true

    def __str__(self) -> str:
        return self.lang


CLIENTS = [
    Client("php", ("php", "php/client.php"), hard=False),
    Client("python", (sys.executable, "python/client.py"), hard=False),
    Client("node", ("node", "node/client.mjs"), hard=False),
    Client("go", ("go", "run", "go/client.go"), hard=True),
    Client("ruby", ("ruby", "ruby/client.rb"), hard=True),
]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, origin: Origin) -> Iterator[Server]:
    for path in (*OBJECTS, "/clients/c.css"):
        origin.route(path, static)
    s = Server(tmp_path_factory.mktemp("clients") / "data").start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The clients' environment: Go builds in a private cache and downloads nothing."""
    go = tmp_path_factory.mktemp("go")
    return {
        **os.environ,
        "GOCACHE": str(go / "cache"),
        "GOPATH": str(go / "path"),
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
    }


def static(seen: Seen) -> Reply:
    """A stylesheet with a validator, so a soft purge shows as a revalidation."""
    headers = [("Cache-Control", "max-age=3600"), ("ETag", '"v1"'), ("Content-Type", "text/css")]
    if seen.headers.get("if-none-match") == '"v1"':
        return Reply(304, headers=headers)
    return Reply(headers=headers, body=seen.path.encode())


def run(client: Client, args: list[str], env: dict[str, str], transcript: Path) -> None:
    runtime = shutil.which(client.command[0])
    if runtime is None:
        pytest.fail(f"{client.command[0]} is not installed (.ci/run installs it)")
    done = subprocess.run(
        [runtime, *client.command[1:], *args],
        cwd=CLIENTS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    with transcript.open("a") as out:
        out.write(f"$ {' '.join(client.command)} {' '.join(args)}\n{done.stdout}{done.stderr}")
    assert done.returncode == 0, f"{client} client failed, transcript {transcript}:\n" + (
        transcript.read_text()
    )


def zone_by_alias(server: Server, alias: str) -> dict[str, Any]:
    listed = server.api.get("/zones/http/pull")
    assert listed.status_code == 200, listed.text
    zones = [z for z in listed.json()["zones"] if z["alias"] == alias]
    assert len(zones) == 1, listed.text
    return dict(zones[0])


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_client(
    client: Client, api_server: Server, origin: Origin, env: dict[str, str], tmp_path: Path
) -> None:
    transcript = tmp_path / f"{client}-transcript.txt"
    print(f"transcript: {transcript}")
    args = [api_server.api_url, API_KEY, origin.url]
    cname = f"{client}.clients.test"

    run(client, args, env, transcript)
    zone = zone_by_alias(api_server, f"{client}-client")
    assert (zone["name"], zone["origin"], zone["cnames"]) == (zone["alias"], origin.url, cname)
    assert zone["optimize"] == "http"
    cache = zone["cache"]
    assert (cache["cache"], cache["cacheInSecs"], cache["expiry"]) == ("1h", 3600, "1d")
    assert (zone["ssl"]["http2"], zone["ssl"]["enabled"]) == ("Y", "N")

    # Through the cname the client set; the cache block's expiry is what clients are told.
    for path in OBJECTS:
        assert api_server.get(cname, path).headers["x-cache"] == "MISS"
        hit = api_server.get(cname, path)
        assert (hit.headers["x-cache"], hit.content) == ("HIT", path.encode())
        assert hit.headers["cache-control"] == "max-age=86400"

    run(client, [*args, str(zone["id"])], env, transcript)
    history = api_server.api.get(f"/zones/http/pull/{zone['id']}/purges")
    assert history.status_code == 200, history.text
    assert [
        (p["all"], p["delete"], p["files"], p["matched"]) for p in history.json()["purges"]
    ] == [
        (True, client.hard, [], None),
        (False, False, ["/clients/a.css", "/clients/c.css"], 1),
    ]
    after = "MISS" if client.hard else "REVALIDATED"
    for path in OBJECTS:
        r = api_server.get(cname, path)
        assert (r.headers["x-cache"], r.content) == (after, path.encode()), path
