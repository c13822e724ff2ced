"""Purge exactly as the seed page describes it (README, Purge), against a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from origin import Origin, Reply, Seen
from purge_hammer import hammer_through_purges
from server import API_KEY, Server

Zone = dict[str, Any]
SEED = (Path(__file__).parent.parent / "seed" / "purge_page.txt").read_text()
SEED_BASE = "https://api.5centscdn.com/v2"


def seed_example(start: str, end: str) -> str:
    """One example from the seed page, verbatim, from the line starting with `start` to
    the line starting with `end`."""
    match = re.search(rf"^{re.escape(start)}.*?^{re.escape(end)}[^\n]*$", SEED, re.S | re.M)
    assert match, f"example starting {start!r} not on the seed page"
    return match.group(0)


def localise(example: str, server: Server) -> str:
    """Change only the base URL and the key, as the contract allows."""
    assert SEED_BASE in example and "YOUR_API_KEY" in example
    return example.replace(SEED_BASE, server.api_url).replace("YOUR_API_KEY", API_KEY)


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory: pytest.TempPathFactory, origin: Origin) -> Any:
    """A server whose zone 42 (the seed's) serves /videos/file.mp4 and /images/logo.png."""
    s = Server(tmp_path_factory.mktemp("seed") / "data").start()
    for i in range(42):
        zone = s.create_zone(origin.url, alias=f"seed{i + 1}")
    assert zone["id"] == 42
    for path in ("/videos/file.mp4", "/images/logo.png"):
        origin.route(path, Reply(headers=[("Cache-Control", "max-age=3600")], body=b"seed"))
    yield s, zone
    s.stop()


def warm(server: Server, zone: Zone) -> None:
    for path in ("/videos/file.mp4", "/images/logo.png"):
        server.get(zone["fqdn"], path)
        assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"


def assert_purged(server: Server, zone: Zone) -> None:
    for path in ("/videos/file.mp4", "/images/logo.png"):
        assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"


def test_seed_curl_example_verbatim(seed_server: tuple[Server, Zone]) -> None:
    server, zone = seed_server
    warm(server, zone)
    command = localise(seed_example("curl -X POST", "}'"), server)
    out = subprocess.run(["bash", "-c", command], capture_output=True, check=True, text=True)
    assert json.loads(out.stdout) == {
        "result": "success",
        "message": "Zone Purged",
        **{k: json.loads(out.stdout)[k] for k in ("id", "purged")},
    }
    assert assert_purged(server, zone) is None


def test_seed_python_requests_example_verbatim(seed_server: tuple[Server, Zone]) -> None:
    server, zone = seed_server
    warm(server, zone)
    program = localise(seed_example("import requests", "print(response.json())"), server)
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, check=True, text=True
    )
    assert "'result': 'success'" in out.stdout and "'message': 'Zone Purged'" in out.stdout
    assert_purged(server, zone)


def test_seed_javascript_fetch_example_verbatim(
    seed_server: tuple[Server, Zone], tmp_path: Path
) -> None:
    server, zone = seed_server
    warm(server, zone)
    script = tmp_path / "purge.mjs"  # top-level await, as the example is written
    script.write_text(localise(seed_example("const response", "console.log(data);"), server))
    out = subprocess.run(["node", str(script)], capture_output=True, check=True, text=True)
    assert "result: 'success'" in out.stdout and "message: 'Zone Purged'" in out.stdout
    assert_purged(server, zone)


def test_seed_success_answer_shape(seed_server: tuple[Server, Zone]) -> None:
    server, zone = seed_server
    answer = server.api.post(f"/zones/http/pull/{zone['id']}/purge").json()
    assert answer["result"] == "success" and answer["message"] == "Zone Purged"


# -- semantics ----------------------------------------------------------------------------


def versioned(origin: Origin, path: str, max_age: int = 3600) -> list[int]:
    """The origin serves `v<N>` with ETag "v<N>"; bump the list's value to change it."""
    version = [1]

    def script(seen: Seen) -> Reply:
        etag = f'"v{version[0]}"'
        headers = [
            ("Cache-Control", f"max-age={max_age}"),
            ("ETag", etag),
            ("Surrogate-Key", "all-things v-things"),
        ]
        if seen.headers.get("if-none-match") == etag:
            return Reply(304, headers=headers)
        return Reply(headers=headers, body=f"v{version[0]}".encode())

    origin.route(path, script)
    return version


def test_soft_purge_then_origin_304_refreshes_without_refetch(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    versioned(origin, path)
    server.get(zone["fqdn"], path)
    assert server.purge(zone["id"], [path]).json()["purged"] == 1
    r = server.get(zone["fqdn"], path)
    assert (r.headers["x-cache"], r.content) == ("REVALIDATED", b"v1")
    assert origin.seen[path][-1].headers["if-none-match"] == '"v1"'
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"


def test_soft_purge_serves_the_new_version_when_it_changed(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    version = versioned(origin, path)
    server.get(zone["fqdn"], path)
    version[0] = 2
    server.purge(zone["id"], [path])
    r = server.get(zone["fqdn"], path)
    assert (r.headers["x-cache"], r.content) == ("EXPIRED", b"v2")


def test_hard_purge_removes_the_bytes_before_answering(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    versioned(origin, path)
    server.get(zone["fqdn"], path)
    objects = server.data_dir / "cache" / "objects"
    before = {p for p in objects.rglob("*") if p.is_file()}
    assert server.purge(zone["id"], [path], delete=True).status_code == 200
    after = {p for p in objects.rglob("*") if p.is_file()}
    assert len(before - after) == 1
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"


def test_path_purge_covers_every_query_variant_and_a_query_only_its_own(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    versioned(origin, path)
    for q in ("?a=1", "?a=2"):
        server.get(zone["fqdn"], path + q)
    server.purge(zone["id"], [path + "?a=1"], delete=True)
    assert server.get(zone["fqdn"], path + "?a=1").headers["x-cache"] == "MISS"
    assert server.get(zone["fqdn"], path + "?a=2").headers["x-cache"] == "HIT"
    server.purge(zone["id"], [path], delete=True)
    assert server.get(zone["fqdn"], path + "?a=2").headers["x-cache"] == "MISS"


def test_prefix_purge(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    base = path.rsplit("/", 1)[0]
    for name in ("img/a.png", "img/b.png", "other.txt"):
        versioned(origin, f"{base}/{name}")
        server.get(zone["fqdn"], f"{base}/{name}")
    answer = server.purge(zone["id"], [f"{base}/img/*"], delete=True).json()
    assert answer["purged"] == 2
    assert server.get(zone["fqdn"], f"{base}/img/a.png").headers["x-cache"] == "MISS"
    assert server.get(zone["fqdn"], f"{base}/other.txt").headers["x-cache"] == "HIT"


def test_full_url_on_a_zone_hostname(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    versioned(origin, path)
    server.get(zone["fqdn"], path)
    r = server.purge(zone["id"], [f"https://{zone['fqdn']}{path}"], delete=True)
    assert r.json()["purged"] == 1


def cached(server: Server, origin: Origin, zone: Zone, paths: list[str]) -> None:
    for p in paths:
        versioned(origin, p)
        server.get(zone["fqdn"], p)
        assert server.get(zone["fqdn"], p).headers["x-cache"] == "HIT"


def x_cache(server: Server, zone: Zone, paths: list[str]) -> list[str]:
    return [server.get(zone["fqdn"], p).headers["x-cache"] for p in paths]


def test_glob_star_js_purges_every_js_path_across_slashes(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    base = path.rsplit("/", 1)[0]
    js, css = [f"{base}/a.js", f"{base}/x/b.js"], [f"{base}/a.css"]
    cached(server, origin, zone, js + css)
    answer = server.purge(zone["id"], ["*.js"]).json()
    assert answer["purged"] == 2, answer
    assert x_cache(server, zone, js + css) == ["REVALIDATED", "REVALIDATED", "HIT"]
    listing = server.api.get(f"/zones/http/pull/{zone['id']}/purges").json()["purges"]
    assert listing[0]["files"] == ["/*.js"]


def test_glob_in_the_middle_of_a_path(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    base = path.rsplit("/", 1)[0]
    thumbs = [f"{base}/img/1/thumb.png", f"{base}/img/2/x/thumb.png"]
    others = [f"{base}/img/1/full.png", f"{base}/img/thumb.png"]
    cached(server, origin, zone, thumbs + others)
    assert server.purge(zone["id"], [f"{base}/img/*/thumb.png"]).json()["purged"] == 2
    assert x_cache(server, zone, thumbs + others) == ["REVALIDATED"] * 2 + ["HIT"] * 2


def test_hard_glob_purge_removes_the_bytes_before_answering(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    base = path.rsplit("/", 1)[0]
    gone, kept = [f"{base}/a.js", f"{base}/d/b.js"], [f"{base}/c.css"]
    cached(server, origin, zone, gone + kept)
    objects = server.data_dir / "cache" / "objects"
    before = {p for p in objects.rglob("*") if p.is_file()}
    assert server.purge(zone["id"], [f"{base}/*.js"], delete=True).json()["purged"] == 2
    after = {p for p in objects.rglob("*") if p.is_file()}
    assert len(before - after) == 2
    assert x_cache(server, zone, gone + kept) == ["MISS", "MISS", "HIT"]


def test_glob_with_a_query_purges_that_variant_of_each_path(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    base = path.rsplit("/", 1)[0]
    asked = [f"{base}/a.png?w=1", f"{base}/b/c.png?w=1"]
    other = [f"{base}/a.png?w=2"]
    cached(server, origin, zone, asked + other)
    assert server.purge(zone["id"], [f"{base}/*.png?w=1"], delete=True).json()["purged"] == 2
    assert x_cache(server, zone, asked + other) == ["MISS", "MISS", "HIT"]


def test_full_url_on_the_origin_host_relative_to_the_origin_path(
    server: Server, origin: Origin, path: str
) -> None:
    zone = server.create_zone(f"{origin.url}/static", alias=f"static{abs(hash(path))}")
    versioned(origin, f"/static{path}")
    server.get(zone["fqdn"], path)
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    outside = server.purge(zone["id"], [f"{origin.url}/elsewhere{path}"])
    assert outside.status_code == 400
    assert "outside the zone's origin path /static/" in outside.json()["message"]
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    # the site's own URL, as a plugin on the origin sends it (the port does not matter)
    site_url = f"https://127.0.0.1/static{path}"
    assert server.purge(zone["id"], [site_url], delete=True).json()["purged"] == 1
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"


def test_full_url_on_the_zone_host_header(server: Server, origin: Origin, path: str) -> None:
    zone = server.create_zone(
        origin.url, alias=f"hh{abs(hash(path))}", hostHeader="www.site.example"
    )
    cached(server, origin, zone, [path])
    r = server.purge(zone["id"], [f"http://WWW.site.example{path}"], delete=True)
    assert r.json()["purged"] == 1
    assert x_cache(server, zone, [path]) == ["MISS"]


def test_full_url_on_a_foreign_host_is_a_400_naming_it(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    cached(server, origin, zone, [path])
    r = server.purge(zone["id"], [f"https://evil.example{path}"])
    assert r.status_code == 400
    assert r.json()["result"] == "error" and "'evil.example'" in r.json()["message"]
    assert x_cache(server, zone, [path]) == ["HIT"]


def test_tag_purge_from_surrogate_key(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    versioned(origin, path)
    server.get(zone["fqdn"], path)
    r = server.api.post(f"/zones/http/pull/{zone['id']}/purge", json={"tags": ["v-things"]})
    assert r.json()["purged"] == 1
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "REVALIDATED"


@pytest.mark.parametrize("body", [None, b"", b"{}"], ids=["omitted", "empty", "empty-object"])
def test_whole_zone_purge(
    server: Server, origin: Origin, zone: Zone, path: str, body: bytes | None
) -> None:
    versioned(origin, path)
    server.get(zone["fqdn"], path)
    r = server.api.post(
        f"/zones/http/pull/{zone['id']}/purge?delete=true",
        content=body,
        headers={"Content-Type": "application/json"} if body else {},
    )
    assert r.json()["message"] == "Zone Purged"
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"


def test_whole_zone_soft_purge_revalidates(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    versioned(origin, path)
    server.get(zone["fqdn"], path)
    server.purge(zone["id"])
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "REVALIDATED"


def test_purge_history_newest_first_with_reclaim_time(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    server.purge(zone["id"], [path])
    server.purge(zone["id"], delete=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listing = server.api.get(f"/zones/http/pull/{zone['id']}/purges").json()["purges"]
        if listing[0]["reclaimed_at"]:
            break
        time.sleep(0.05)
    assert [(p["all"], p["delete"]) for p in listing] == [(True, True), (False, False)]
    assert listing[1]["files"] == [path]
    assert listing[0]["reclaimed_at"] is not None


def test_purge_survives_a_restart(tmp_path: Path, origin: Origin, path: str) -> None:
    s = Server(tmp_path / "data").start()
    versioned(origin, path)
    zone = s.create_zone(origin.url, alias="restart")
    s.get(zone["fqdn"], path)
    assert s.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    s.purge(zone["id"], [path])
    s.stop()
    s2 = Server(tmp_path / "data").start()
    try:
        assert s2.get(zone["fqdn"], path).headers["x-cache"] == "REVALIDATED"
    finally:
        s2.stop()


# -- bad input: the documented status, and nothing changes -------------------------------

BAD = [
    ("malformed JSON", b"{nope", "application/json", "", 400),
    ("files not a list", b'{"files": "/a"}', "application/json", "", 400),
    ("files holds non-strings", b'{"files": [1]}', "application/json", "", 400),
    ("empty files list", b'{"files": []}', "application/json", "", 400),
    ("relative path", b'{"files": ["a.png"]}', "application/json", "", 400),
    ("dot-dot path", b'{"files": ["/a/../b"]}', "application/json", "", 400),
    ("URL of another host", b'{"files": ["https://evil.example/a"]}', "application/json", "", 400),
    ("NUL byte", b'{"files": ["/a\\u0000b"]}', "application/json", "", 400),
    ("8 KiB path", json.dumps({"files": ["/" + "a" * 8192]}).encode(), "application/json", "", 400),
    (
        "over 10,000 files",
        json.dumps({"files": [f"/f{i}" for i in range(10_001)]}).encode(),
        "application/json",
        "",
        413,
    ),
    (
        "over 1 MiB body",
        json.dumps({"files": ["/" + "a" * 4000] * 300}).encode(),
        "application/json",
        "",
        413,
    ),
    ("wrong content type", b'{"files": ["/a"]}', "text/plain", "", 415),
    ("delete=maybe", b'{"files": ["/a"]}', "application/json", "?delete=maybe", 400),
    ("unknown field", b'{"file": ["/a"]}', "application/json", "", 400),
    ("double star", b'{"files": ["/a/**.js"]}', "application/json", "", 400),
    ("17 stars", json.dumps({"files": ["/" + "*a" * 17]}).encode(), "application/json", "", 400),
    (
        "glob over 4096 characters",
        json.dumps({"files": ["/*" + "a" * 4095]}).encode(),
        "application/json",
        "",
        400,
    ),
    ("glob in the host", b'{"files": ["https://*.localhost/a.js"]}', "application/json", "", 400),
    ("unbalanced [ in a host", b'{"files": ["http://[/a"]}', "application/json", "", 400),
]


@pytest.mark.parametrize(("what", "body", "ctype", "query", "status"), BAD, ids=[b[0] for b in BAD])
def test_bad_purge_input_changes_nothing(
    server: Server,
    origin: Origin,
    zone: Zone,
    path: str,
    what: str,
    body: bytes,
    ctype: str,
    query: str,
    status: int,
) -> None:
    versioned(origin, path)
    server.get(zone["fqdn"], path)
    r = server.api.post(
        f"/zones/http/pull/{zone['id']}/purge{query}", content=body, headers={"Content-Type": ctype}
    )
    assert r.status_code == status, r.text
    assert r.json()["result"] == "error" and r.json()["message"]
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    assert server.api.get(f"/zones/http/pull/{zone['id']}/purges").json()["purges"] == []


@pytest.mark.parametrize(
    ("zone_ref", "status"),
    [("abc", 400), ("0", 400), ("-1", 400), ("99999999999999999999", 400), ("999999", 404)],
)
def test_purge_of_a_zone_that_is_not_one(server: Server, zone_ref: str, status: int) -> None:
    assert server.api.post(f"/zones/http/pull/{zone_ref}/purge").status_code == status


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("wrong", 401)])
def test_purge_needs_a_valid_key(server: Server, zone: Zone, key: str | None, status: int) -> None:
    headers = {"X-API-Key": key} if key else {}
    r = httpx.post(f"{server.api_url}/zones/http/pull/{zone['id']}/purge", headers=headers)
    assert r.status_code == status


# -- the guarantee: after the answer, no worker serves purged content as fresh -----------


def test_no_worker_serves_purged_content_after_the_answer(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    version = versioned(origin, path)
    server.get(zone["fqdn"], path)

    def purge(n: int) -> httpx.Response:
        version[0] = n  # the origin now serves v<n>
        return server.purge(zone["id"], [path], delete=n % 2 == 0)

    # several connections, spread over the workers by the kernel
    checked, purges = hammer_through_purges(
        lambda: httpx.Client(base_url=server.edge_url, headers={"Host": zone["fqdn"]}),
        path,
        purge,
        connections=6,
        purges=20,
    )
    assert checked > 200
    print(f"consistency: {checked} requests checked against {purges} purges")


def test_no_worker_serves_glob_purged_content_after_the_answer(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    version = versioned(origin, path)
    server.get(zone["fqdn"], path)
    glob = path.rsplit("/", 1)[0] + "/*ject.*"

    def purge(n: int) -> httpx.Response:
        version[0] = n
        return server.purge(zone["id"], [glob], delete=n % 2 == 0)

    checked, _ = hammer_through_purges(
        lambda: httpx.Client(base_url=server.edge_url, headers={"Host": zone["fqdn"]}),
        path,
        purge,
        connections=6,
        purges=20,
    )
    assert checked > 200


def test_soft_purged_content_is_served_stale_while_the_origin_fails(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=3600")], body=b"kept"))
    server.get(zone["fqdn"], path)
    server.purge(zone["id"], [path])
    origin.route(path, Reply(status=502, body=b"bad gateway"))
    r = server.get(zone["fqdn"], path)
    assert (r.status_code, r.headers["x-cache"], r.content) == (200, "STALE", b"kept")


def test_hard_purged_content_is_gone_even_when_the_origin_fails(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=3600")], body=b"kept"))
    server.get(zone["fqdn"], path)
    server.purge(zone["id"], [path], delete=True)
    origin.route(path, Reply(status=502, body=b"bad gateway"))
    assert server.get(zone["fqdn"], path).status_code == 502


@pytest.mark.parametrize(
    ("stored_as", "asked_as", "purged_as"),
    [
        ("/%62", "/b", "/%62"),
        ("/b", "/%62", "/b"),
        ("/caf%c3%a9", "/caf%C3%A9", "/café"),
        ("/caf%C3%A9", "/caf%c3%a9", "/caf%c3%a9"),
    ],
    ids=["encoded-unreserved", "plain", "utf8-lower", "utf8-upper"],
)
def test_one_resource_however_spelled_is_one_object_and_one_purge(
    server: Server,
    origin: Origin,
    zone: Zone,
    path: str,
    stored_as: str,
    asked_as: str,
    purged_as: str,
) -> None:
    """RFC 3986 §6.2.2: `/b` and `/%62`, `%c3%a9` and `%C3%A9` are the same resource."""
    base = path.rsplit("/", 1)[0]
    origin.route(
        base + normalise_for_origin(stored_as),
        Reply(headers=[("Cache-Control", "max-age=3600")], body=b"one"),
    )
    assert server.get(zone["fqdn"], base + stored_as).status_code == 200
    assert server.get(zone["fqdn"], base + asked_as).headers["x-cache"] == "HIT"
    answer = server.purge(zone["id"], [base + purged_as], delete=True).json()
    assert answer["purged"] == 1, answer
    assert server.get(zone["fqdn"], base + asked_as).headers["x-cache"] == "MISS"


def normalise_for_origin(spelled: str) -> str:
    """What the origin is asked for: the normal spelling."""
    return {"/%62": "/b", "/caf%c3%a9": "/caf%C3%A9"}.get(spelled, spelled)
