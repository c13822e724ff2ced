"""Prefetch (README, Purge and prefetch) on one node, through real sockets: the API, a
real `pullzone serve` with two workers, a real origin on loopback. The cluster case is in
test_cluster.py."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from origin import Origin, Reply
from server import Server

from pullzone.edge.internal import INTERNAL_HEADER
from pullzone.limits import MAX_PREFETCH_FILES

Zone = dict[str, Any]
_aliases = itertools.count(1)


def new_zone(server: Server, origin: Origin, **fields: Any) -> Zone:
    return server.create_zone(origin.url, alias=f"pf{next(_aliases)}", **fields)


def prefetch(server: Server, zone: Zone, body: Any) -> httpx.Response:
    return server.api.post(f"/zones/http/pull/{zone['id']}/prefetch", json=body)


def objects(origin: Origin, base: str, n: int) -> list[str]:
    paths = [f"{base}/{i}.css" for i in range(n)]
    for p in paths:
        origin.route(p, Reply(headers=[("Cache-Control", "max-age=600")], body=p.encode()))
    return paths


def test_prefetched_objects_are_hits_from_the_first_visitor(
    server: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(server, origin)
    paths = objects(origin, path, 4)
    answer = prefetch(server, zone, {"files": [*paths, paths[0]]})  # one twice: asked once
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["result"], body["message"], body["files"]) == ("success", "Zone Prefetched", 4)
    assert "pending" not in body
    assert [origin.count(p) for p in paths] == [1] * 4  # stored before the answer
    for p in paths:
        # New connections: either worker finds it (the node's cache is shared).
        r = httpx.get(server.edge_url + p, headers={"Host": zone["fqdn"]})
        assert (r.headers["x-cache"], r.content) == ("HIT", p.encode())
    again = prefetch(server, zone, {"files": paths})
    assert again.status_code == 200
    assert [origin.count(p) for p in paths] == [1] * 4  # fresh already: not asked again


def test_a_prefetch_passes_the_visitors_rules_and_its_secret_stays_in_the_node(
    server: Server, origin: Origin, path: str
) -> None:
    """domainlock with noreferer refuses a request without a Referer, as a prefetch is;
    the object is stored anyway, for the visitors the rule lets through."""
    lock = {"enabled": "Y", "list": "example.com", "noreferer": "Y"}
    zone = new_zone(server, origin, domainlock=lock)
    [obj] = objects(origin, path, 1)
    refused = server.get(zone["fqdn"], obj, headers={INTERNAL_HEADER: "guess"})
    assert refused.status_code == 403  # a visitor's guess at the secret is no secret
    assert origin.count(obj) == 0
    assert prefetch(server, zone, {"files": [obj]}).status_code == 200
    assert origin.count(obj) == 1
    [seen] = origin.seen[obj]
    assert INTERNAL_HEADER not in seen.headers  # never sent to an origin
    visitor = server.get(zone["fqdn"], obj, headers={"Referer": "https://example.com/"})
    assert (visitor.status_code, visitor.headers["x-cache"]) == (200, "HIT")


def test_urls_on_the_zone_are_prefetched_as_their_paths(
    server: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(server, origin)
    [obj] = objects(origin, path, 1)
    answer = prefetch(server, zone, {"files": [f"https://{zone['fqdn']}{obj}"]})
    assert answer.status_code == 200, answer.text
    assert server.get(zone["fqdn"], obj).headers["x-cache"] == "HIT"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "files"),
        ({"files": []}, 400, "empty"),
        ({"files": "/a.css"}, 400, "list"),
        ({"files": [1]}, 400, "list"),
        ({"files": ["/img/*.png"]}, 400, "*"),
        ({"files": ["/a.css"], "tags": ["x"]}, 400, "unknown field"),
        ({"files": ["/../etc/passwd"]}, 400, ".."),
        ({"files": ["https://elsewhere.example/a.css"]}, 400, "elsewhere.example"),
        ({"files": [f"/{i}" for i in range(MAX_PREFETCH_FILES + 1)]}, 413, "at most"),
    ],
)
def test_bad_prefetches_are_refused_and_fetch_nothing(
    server: Server, origin: Origin, path: str, body: Any, status: int, words: str
) -> None:
    zone = new_zone(server, origin)
    before = sum(len(v) for v in origin.seen.values())
    answer = prefetch(server, zone, body)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["result"] == "error" and words in error["message"], error
    assert sum(len(v) for v in origin.seen.values()) == before


def test_a_prefetch_of_an_unknown_zone_is_404(server: Server) -> None:
    answer = server.api.post("/zones/http/pull/999999/prefetch", json={"files": ["/a"]})
    assert answer.status_code == 404
    assert answer.json()["result"] == "error"
