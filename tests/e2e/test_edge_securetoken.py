"""Signed URLs (the `securetoken` block) through a real `pullzone serve`, a real origin and
links made by `pullzone sign`: one cached object per path whatever link reached it, the
token never sent to the origin, 403 for a wrong or missing token, 410 for an expired one."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from origin import Origin, Reply
from server import API_KEY, Server, samples, until

SECRET = "e2e-secret-0123"


def cli_sign(server: Server, zone: dict[str, Any], path: str, *args: str) -> str:
    env = {**os.environ, "PULLZONE_API_URL": server.api_url, "PULLZONE_API_KEY": API_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "pullzone", "sign", str(zone["id"]), path, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    url = urlsplit(done.stdout.strip())
    assert (url.scheme, url.hostname) == ("http", zone["fqdn"])
    return url.path + (f"?{url.query}" if url.query else "")


def md5(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.md5(text.encode()).digest()).decode().rstrip("=")


def signed_zone(
    server: Server, origin: Origin, alias: str, policy: str, **block: str
) -> dict[str, Any]:
    token = {"enabled": "Y", "policy": policy, "list": SECRET, "timeout": 600, **block}
    return server.create_zone(origin.url, alias=alias, securetoken=token)


@pytest.fixture()
def from_second_address(server: Server) -> Iterator[httpx.Client]:
    """A client connecting from 127.0.0.2 (the edge sees that as the client's address)."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server.edge_url, transport=transport) as client:
        yield client


def origin_targets(origin: Origin, prefix: str) -> list[str]:
    with origin._lock:
        return [target for target, seen in origin.seen.items() if seen and prefix in target]


def cacheable(origin: Origin, path: str, body: bytes) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=300")], body=body))


@pytest.mark.parametrize("policy", ["Q", "F", "D"])
def test_a_signed_link_is_served_then_hit_through_another_link(
    server: Server, origin: Origin, policy: str
) -> None:
    zone = signed_zone(server, origin, f"tok-{policy.lower()}", policy)
    path = f"/tok-{policy}/file.bin"
    cacheable(origin, path, b"signed body")
    first = cli_sign(server, zone, path, "--expires", "100")
    second = cli_sign(server, zone, path, "--expires", "200")
    assert first != second
    if policy == "Q":
        assert first.startswith(f"{path}?md5=")
    else:
        assert first.startswith("/md5=") and first.endswith(path)
    a = server.get(zone["fqdn"], first)
    b = server.get(zone["fqdn"], second)
    assert (a.status_code, a.headers["x-cache"], a.content) == (200, "MISS", b"signed body")
    assert (b.status_code, b.headers["x-cache"], b.content) == (200, "HIT", b"signed body")
    assert origin.count(path) == 1  # one object; the origin got the bare path
    assert server.get(zone["fqdn"], path).status_code == 403  # no token
    assert origin_targets(origin, f"/tok-{policy}/") == [path]


def test_wrong_missing_and_expired_tokens(server: Server, origin: Origin) -> None:
    zone = signed_zone(server, origin, "tok-bad", "Q")
    path = "/tok-bad/a.txt"
    cacheable(origin, path, b"a")
    good = cli_sign(server, zone, path)
    assert server.get(zone["fqdn"], good).status_code == 200
    expires = int(time.time()) - 5
    expired = f"{path}?md5={md5(f'{expires}{path} {SECRET}')}&expires={expires}"
    forged = f"{path}?md5={md5(f'{expires + 999}{path} other')}&expires={expires + 999}"
    answers = {
        "expired": server.get(zone["fqdn"], expired),
        "forged": server.get(zone["fqdn"], forged),
        "missing": server.get(zone["fqdn"], path),
        "changed": server.get(zone["fqdn"], good.replace("expires=", "expires=1")),
    }
    assert {name: r.status_code for name, r in answers.items()} == {
        "expired": 410,
        "forged": 403,
        "missing": 403,
        "changed": 403,
    }
    assert "expired" in answers["expired"].text and answers["forged"].text
    assert answers["missing"].headers["x-cache"] == "BYPASS"
    # Refused requests are never cached: the same link still refuses after a valid fill.
    assert server.get(zone["fqdn"], path).status_code == 403
    assert origin.count(path) == 1
    name = 'pullzone_edge_refused_total{reason="securetoken"}'
    counted = until(lambda: samples(server), lambda m: m.get(name, 0) >= 5)  # 4 + 1 here
    assert counted[name] >= 5


def test_keyip_binds_the_link_to_the_client_address(
    server: Server, origin: Origin, from_second_address: httpx.Client
) -> None:
    zone = signed_zone(server, origin, "tok-ip", "Q", keyip="Y")
    path = "/tok-ip/a.txt"
    cacheable(origin, path, b"ip")
    env_fail = subprocess.run(
        [sys.executable, "-m", "pullzone", "sign", str(zone["id"]), path],
        env={**os.environ, "PULLZONE_API_URL": server.api_url, "PULLZONE_API_KEY": API_KEY},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert env_fail.returncode == 1 and "keyip" in env_fail.stderr
    for_second = cli_sign(server, zone, path, "--ip", "127.0.0.2")
    host = {"Host": zone["fqdn"]}
    assert from_second_address.get(for_second, headers=host).status_code == 200
    assert server.get(zone["fqdn"], for_second).status_code == 403  # from 127.0.0.1
    for_first = cli_sign(server, zone, path, "--ip", "127.0.0.1")
    assert server.get(zone["fqdn"], for_first).status_code == 200
    assert from_second_address.get(for_first, headers=host).status_code == 403


def test_exempt_addresses_need_no_token_and_never_send_one(
    server: Server, origin: Origin, from_second_address: httpx.Client
) -> None:
    zone = signed_zone(server, origin, "tok-exempt", "Q", ips="127.0.0.2/32")
    path = "/tok-exempt/a.txt"
    cacheable(origin, path, b"exempt")
    host = {"Host": zone["fqdn"]}
    assert from_second_address.get(path, headers=host).status_code == 200
    stray = from_second_address.get(f"{path}?md5=junk&expires=1", headers=host)
    assert (stray.status_code, stray.headers["x-cache"]) == (200, "HIT")
    assert server.get(zone["fqdn"], path).status_code == 403
    assert origin_targets(origin, "/tok-exempt/") == [path]


def test_a_directory_link_opens_every_hls_segment_under_it(server: Server, origin: Origin) -> None:
    zone = signed_zone(server, origin, "tok-hls", "D", timeout="3600")
    playlist = "/tok-hls/720p/index.m3u8"
    segments = [f"/tok-hls/720p/seg-{n:05}.ts" for n in range(3)]
    cacheable(origin, playlist, b"#EXTM3U\nseg-00000.ts\nseg-00001.ts\nseg-00002.ts\n")
    for n, segment in enumerate(segments):
        cacheable(origin, segment, b"TS%d" % n)
    cacheable(origin, "/tok-hls/1080p/seg-00000.ts", b"other")
    link = cli_sign(server, zone, playlist)
    prefix = link.removesuffix(playlist)
    assert server.get(zone["fqdn"], link).status_code == 200
    for n, segment in enumerate(segments):  # as a player resolves them against the playlist
        answer = server.get(zone["fqdn"], prefix + segment)
        assert (answer.status_code, answer.content) == (200, b"TS%d" % n)
    assert server.get(zone["fqdn"], prefix + "/tok-hls/1080p/seg-00000.ts").status_code == 403
    assert server.get(zone["fqdn"], segments[0]).status_code == 403
    assert sorted(origin_targets(origin, "/tok-hls/")) == sorted([playlist, *segments])


def test_a_post_through_a_signed_zone_does_not_forward_the_token(
    server: Server, origin: Origin
) -> None:
    zone = signed_zone(server, origin, "tok-post", "Q")
    path = "/tok-post/form"
    origin.route(path, Reply(body=b"posted"))
    link = cli_sign(server, zone, path + "?a=1")
    answer = server.edge.post(link, headers={"Host": zone["fqdn"]}, content=b"x=1")
    assert (answer.status_code, answer.content) == (200, b"posted")
    assert origin_targets(origin, "/tok-post/") == [f"{path}?a=1"]
