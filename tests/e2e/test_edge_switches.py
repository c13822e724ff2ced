"""The zone's edge switches (cors, disposition, stripcookie, xff), its backup origin and
its pinned origin address, through a real `pullzone serve` and real origins on loopback
(docs/zones.md, Blocks)."""

from __future__ import annotations

import itertools
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from origin import Origin, Reply
from ports import free_port
from server import Server, until

Zone = dict[str, Any]
FAILOVERS = 'pullzone_edge_faults_total{kind="origin_failover"}'
_aliases = itertools.count(1)
BIG = bytes(range(256)) * (4 * 1024 * 1024 // 256)  # 4 MiB


def _alias() -> str:
    return f"sw{next(_aliases)}"


def _metric(server: Server, name: str) -> float:
    url = server.api_url.removesuffix("/v2") + "/metrics"
    for line in server.api.get(url).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rpartition(" ")[2])
    return 0.0


@pytest.fixture()
def other_origin() -> Iterator[Origin]:
    o = Origin()
    yield o
    o.close()


def test_cors_and_disposition_are_on_every_response_and_preflights_are_answered(
    server: Server, origin: Origin, path: str
) -> None:
    zone = server.create_zone(origin.url, alias=_alias(), edge={"cors": "Y", "disposition": "Y"})
    plain = server.create_zone(origin.url, alias=_alias())
    origin.route(
        path,
        Reply(
            headers=[
                ("Cache-Control", "max-age=60"),
                ("ETag", '"v1"'),
                ("Access-Control-Allow-Origin", "https://only.example"),
            ],
            body=b"0123456789",
        ),
    )
    host = zone["fqdn"]
    miss = server.get(host, path)
    hit = server.get(host, path)
    not_modified = server.get(host, path, headers={"If-None-Match": '"v1"'})
    partial = server.get(host, path, headers={"Range": "bytes=2-4"})
    assert [r.status_code for r in (miss, hit, not_modified, partial)] == [200, 200, 304, 206]
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert partial.content == b"234"
    for response in (miss, hit, not_modified, partial):
        # The zone's value replaces the origin's: one field, never two.
        assert response.headers.get_list("access-control-allow-origin") == ["*"]
        assert response.headers["content-disposition"] == "attachment"
    # Another zone on the same stored path layout: the origin's own fields, nothing added.
    other = server.get(plain["fqdn"], path)
    assert other.headers["access-control-allow-origin"] == "https://only.example"
    assert "content-disposition" not in other.headers

    before = origin.count(path)
    preflight = server.edge.options(
        path,
        headers={
            "Host": host,
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-token, content-type",
        },
    )
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "x-token, content-type"
    assert int(preflight.headers["access-control-max-age"]) > 0
    assert preflight.content == b""
    assert origin.count(path) == before  # answered at the edge
    # A zone without cors sends the preflight on to its origin.
    server.edge.options(
        path,
        headers={
            "Host": plain["fqdn"],
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
        },
    )
    assert origin.count(path) == before + 1


def test_cors_switched_on_later_applies_to_what_is_stored(
    server: Server, origin: Origin, path: str
) -> None:
    zone = server.create_zone(origin.url, alias=_alias())
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"x"))
    assert "access-control-allow-origin" not in server.get(zone["fqdn"], path).headers
    changed = server.api.post(f"/zones/http/pull/{zone['id']}/edge", json={"cors": "Y"})
    assert changed.status_code == 200, changed.text
    hit = server.get(zone["fqdn"], path)
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["access-control-allow-origin"] == "*"
    assert origin.count(path) == 1


def test_stripcookie_removes_set_cookie_and_the_response_is_cached(
    server: Server, origin: Origin, path: str
) -> None:
    stripping = server.create_zone(origin.url, alias=_alias(), edge={"stripcookie": "Y"})
    keeping = server.create_zone(origin.url, alias=_alias())
    origin.route(
        path,
        Reply(headers=[("Cache-Control", "max-age=60"), ("Set-Cookie", "s=1")], body=b"page"),
    )
    first = server.get(stripping["fqdn"], path)
    second = server.get(stripping["fqdn"], path)
    assert "set-cookie" not in first.headers and "set-cookie" not in second.headers
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.content == b"page"
    assert origin.count(path) == 1
    # Without the switch, a response that sets a cookie is never shared.
    kept = [server.get(keeping["fqdn"], path) for _ in range(2)]
    assert [r.headers["set-cookie"] for r in kept] == ["s=1", "s=1"]
    assert [r.headers["x-cache"] for r in kept] == ["MISS", "MISS"]
    # A pass-through (not a cacheable method) is stripped too.
    posted = server.edge.post(path, headers={"Host": stripping["fqdn"]}, content=b"x")
    assert posted.status_code == 200 and "set-cookie" not in posted.headers


def test_xff_sends_the_client_address_only_when_on(
    server: Server, origin: Origin, path: str
) -> None:
    off = server.create_zone(origin.url, alias=_alias())
    on = server.create_zone(origin.url, alias=_alias(), edge={"xff": "Y"})
    origin.route(path, Reply(headers=[("Cache-Control", "no-store")], body=b"x"))
    server.get(off["fqdn"], path, headers={"X-Forwarded-For": "203.0.113.9"})
    server.get(on["fqdn"], path)
    seen = origin.seen[path]
    assert "x-forwarded-for" not in seen[0].headers  # nor the client's own value
    assert seen[1].headers["x-forwarded-for"] == "127.0.0.1"


def test_backup_origin_answers_when_the_origin_refuses(
    server: Server, other_origin: Origin, path: str
) -> None:
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    zone = server.create_zone(refused, alias=_alias(), backup=other_origin.url)
    other_origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"backup"))
    before = _metric(server, FAILOVERS)
    first = server.get(zone["fqdn"], path)
    assert (first.status_code, first.content, first.headers["x-cache"]) == (200, b"backup", "MISS")
    assert other_origin.seen[path][0].headers["host"] == f"127.0.0.1:{other_origin.port}"
    second = server.get(zone["fqdn"], path)
    assert second.headers["x-cache"] == "HIT"  # stored as usual
    assert other_origin.count(path) == 1
    assert until(lambda: _metric(server, FAILOVERS), lambda n: n >= before + 1) >= before + 1


def test_backup_origin_answers_a_5xx_and_a_timeout(
    server: Server, origin: Origin, other_origin: Origin, path: str
) -> None:
    zone = server.create_zone(origin.url, alias=_alias(), backup=other_origin.url)
    origin.route(path + "5xx", Reply(503, body=b"down"))
    origin.route(path + "slow", Reply(delay=3.0, body=b"late"))  # the server waits 2 s
    for suffix in ("5xx", "slow"):
        other_origin.route(
            path + suffix, Reply(headers=[("Cache-Control", "no-store")], body=b"ok")
        )
        response = server.get(zone["fqdn"], path + suffix)
        assert (response.status_code, response.content) == (200, b"ok")
        assert origin.count(path + suffix) == 1 and other_origin.count(path + suffix) == 1
    # A POST is not idempotent (RFC 9110 §9.2.2): the origin's 5xx is its answer, and
    # the backup never sees it.
    posted = server.edge.post(path + "5xx", headers={"Host": zone["fqdn"]}, content=b"x")
    assert posted.status_code == 503
    assert origin.count(path + "5xx") == 2 and other_origin.count(path + "5xx") == 1
    # Without a backup, the 5xx is the answer.
    plain = server.create_zone(origin.url, alias=_alias())
    assert server.get(plain["fqdn"], path + "5xx").status_code == 503


def test_a_backup_that_fails_too_is_the_answer(server: Server, path: str) -> None:
    zone = server.create_zone(
        f"http://127.0.0.1:{free_port()}", alias=_alias(), backup=f"http://127.0.0.1:{free_port()}"
    )
    assert server.get(zone["fqdn"], path).status_code == 502


def test_originip_connects_to_the_pinned_address_with_the_origins_host(
    server: Server, path: str
) -> None:
    pinned = Origin("127.0.0.2")
    try:
        pinned.route(path, Reply(headers=[("Cache-Control", "no-store")], body=b"pinned"))
        name = f"origin.invalid:{pinned.port}"  # .invalid never resolves (RFC 6761 §6.4)
        zone = server.create_zone(
            f"http://{name}", alias=_alias(), originip={"enabled": "Y", "ip": "127.0.0.2"}
        )
        response = server.get(zone["fqdn"], path)
        assert (response.status_code, response.content) == (200, b"pinned")
        assert pinned.seen[path][-1].headers["host"] == name
        changed = server.api.post(
            f"/zones/http/pull/{zone['id']}/originip",
            json={"customhostheader": "www.example.com"},
        )
        assert changed.status_code == 200, changed.text
        assert server.get(zone["fqdn"], path).content == b"pinned"
        assert pinned.seen[path][-1].headers["host"] == "www.example.com"
        # Switched off, the name is looked up, and it does not resolve.
        off = server.api.post(f"/zones/http/pull/{zone['id']}/originip", json={"enabled": "N"})
        assert off.status_code == 200, off.text
        assert server.get(zone["fqdn"], path).status_code == 502
    finally:
        pinned.close()


@pytest.fixture()
def one_worker(tmp_path: Path) -> Iterator[Server]:
    """One edge worker: a paced response and a HIT share its loop."""
    s = Server(tmp_path / "data", workers=1).start()
    yield s
    s.stop()


def _timed_get(server: Server, host: str, path: str) -> tuple[float, int, str]:
    started = time.monotonic()
    response = server.get(host, path)
    return time.monotonic() - started, len(response.content), response.headers["x-cache"]


def test_bwlimit_paces_a_connection_and_not_the_others(
    one_worker: Server, origin: Origin, path: str
) -> None:
    server = one_worker
    limited = server.create_zone(origin.url, alias=_alias())
    free = server.create_zone(origin.url, alias=_alias())
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=600")], body=BIG))
    origin.route(path + "small", Reply(headers=[("Cache-Control", "max-age=600")], body=b"s"))
    fast, size, _ = _timed_get(server, limited["fqdn"], path)  # stored at full speed
    assert size == len(BIG) and fast < 4
    assert server.get(free["fqdn"], path + "small").headers["x-cache"] == "MISS"
    block = {"enabled": "Y", "policy": "0", "rate": 4096}  # 4096 kbit/s: 512 KiB/s
    changed = server.api.post(f"/zones/http/pull/{limited['id']}/bwlimit", json=block)
    assert changed.status_code == 200, changed.text

    result: dict[str, tuple[float, int, str]] = {}
    begun = threading.Event()

    def download() -> None:
        started = time.monotonic()
        headers = {"Host": limited["fqdn"]}
        with server.edge.stream("GET", path, headers=headers) as response:
            begun.set()
            size = sum(len(piece) for piece in response.iter_bytes())
            result["big"] = (time.monotonic() - started, size, response.headers["x-cache"])

    paced = threading.Thread(target=download)
    paced.start()
    assert begun.wait(10)
    # While the paced transfer runs on the worker's one loop, another connection's HIT
    # is answered at once.
    hits = [_timed_get(server, free["fqdn"], path + "small") for _ in range(5)]
    assert paced.is_alive()
    assert all(took < 0.5 and cache == "HIT" for took, _, cache in hits), hits
    paced.join()
    took, size, cache = result["big"]
    assert (size, cache) == (len(BIG), "HIT")
    assert 8.0 * 0.9 <= took <= 8.0 * 1.1, took  # 4 MiB at 512 KiB/s
    print(f"bwlimit: 4 MiB at 4096 kbit/s in {took:.2f} s")

    # Policy 1: the first 2048 KB at full speed, the other 2 MiB at the rate.
    block = {"enabled": "Y", "policy": "1", "rate": 4096, "rateafter": 2048}
    changed = server.api.post(f"/zones/http/pull/{limited['id']}/bwlimit", json=block)
    assert changed.status_code == 200, changed.text
    took, size, _ = _timed_get(server, limited["fqdn"], path)
    assert size == len(BIG) and 4.0 * 0.9 <= took <= 4.0 * 1.1, took
    print(f"bwlimit: 4 MiB, 2048 KB free then 4096 kbit/s, in {took:.2f} s")


def test_originip_over_https_sends_the_origins_name_as_sni(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    ca = trustme.CA()
    cafile = tmp_path / "origin-ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("secure.invalid").configure_cert(context)
    names: list[str | None] = []

    def note_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = note_sni  # type: ignore[assignment]
    pinned = Origin("127.0.0.2", tls=context)
    monkeypatch.setenv("SSL_CERT_FILE", str(cafile))  # the edge trusts the origin's CA
    server = Server(tmp_path / "data", workers=1).start()
    try:
        pinned.route(path, Reply(headers=[("Cache-Control", "no-store")], body=b"secure"))
        zone = server.create_zone(
            f"https://secure.invalid:{pinned.port}",
            alias=_alias(),
            originip={"enabled": "Y", "ip": "127.0.0.2"},
        )
        response = server.get(zone["fqdn"], path)
        assert (response.status_code, response.content) == (200, b"secure"), response.text
        assert names[-1] == "secure.invalid"
        assert pinned.seen[path][-1].headers["host"] == f"secure.invalid:{pinned.port}"
        # A Host (and SNI) the certificate does not cover is refused: the name is checked.
        changed = server.api.post(
            f"/zones/http/pull/{zone['id']}/originip", json={"customhostheader": "other.invalid"}
        )
        assert changed.status_code == 200, changed.text
        assert server.get(zone["fqdn"], path).status_code == 502
        assert names[-1] == "other.invalid"
    finally:
        server.stop()
        pinned.close()
