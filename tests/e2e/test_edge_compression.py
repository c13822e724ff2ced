"""Compression at the edge (`edge.compression`), through a real `pullzone serve`, a real
origin and real clients (httpx, curl): br and gzip as the client accepts, made once per
coding for the node (the counter), Range and conditional requests on the compressed
variant, never for what may not be compressed, and purges that remove every coding."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
from origin import Origin, Reply
from server import Server, samples, until

from pullzone.edge.encoding import compress, decompress

Zone = dict[str, Any]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    """A node of its own for each test: the compression counter is the node's, and
    counts only what this test made."""
    node = Server(tmp_path / "data", "--origin-timeout", "2").start()
    yield node
    node.stop()


COMPRESSING = pytest.mark.zone(edge={"compression": "Y", "compressionlevel": "5"})
BODY = b"".join(
    b"line %06d: the quick brown fox jumps over the lazy dog\n" % i for i in range(2000)
)
CSS = [("Content-Type", "text/css"), ("Cache-Control", "max-age=600"), ("ETag", '"v1"')]


def made(server: Server, coding: str) -> int:
    return int(samples(server).get(f'pullzone_compressions_total{{encoding="{coding}"}}', 0))


def settled(server: Server, zone: Zone, hits: int) -> dict[str, float]:
    """/metrics once every worker's snapshot counts the zone's `hits` HITs: a snapshot
    that counts a request counts the compression made before it was answered."""
    key = f'pullzone_requests_total{{cache_status="HIT",zone="{zone["id"]}"}}'
    found = until(lambda: samples(server), lambda s: s.get(key, 0) >= hits)
    assert found.get(key, 0) == hits, found.get(key)
    return found


def get(
    server: Server, zone: Zone, path: str, accept: str | None, **headers: str
) -> httpx.Response:
    """A GET on a new connection (either worker) with this Accept-Encoding."""
    sent = {"Host": zone["fqdn"], **headers}
    if accept is not None:
        sent["Accept-Encoding"] = accept
    with httpx.Client(base_url=server.edge_url, timeout=30) as client:
        if accept is None:
            client.headers.pop("accept-encoding", None)
        return client.get(path, headers=sent)


def raw(server: Server, zone: Zone, path: str, *headers: str) -> tuple[str, bytes]:
    """curl's response head and its body bytes as sent (not decoded)."""
    args = ["curl", "-sS", "-D", "-", "-H", f"Host: {zone['fqdn']}"]
    for header in headers:
        args += ["-H", header]
    done = subprocess.run([*args, server.edge_url + path], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), body


def vary(response: httpx.Response) -> list[str]:
    return [v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()]


@COMPRESSING
def test_hits_are_compressed_once_per_coding_for_the_node(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CSS, body=BODY))
    br_before, gzip_before = made(server, "br"), made(server, "gzip")
    miss = get(server, zone, path, "gzip, deflate, br")
    # The fill is relayed as the origin sent it, saying already that it varies.
    assert miss.headers["x-cache"] == "MISS" and "content-encoding" not in miss.headers
    assert miss.content == BODY and "accept-encoding" in vary(miss)
    hits = 0
    for accept, coding in [("gzip, deflate, br", "br"), ("gzip", "gzip")] * 10:
        r = get(server, zone, path, accept)
        hits += 1
        assert (r.status_code, r.headers["x-cache"]) == (200, "HIT")
        assert r.headers["content-encoding"] == coding
        assert r.headers["etag"] == f'W/"v1-{coding}"'
        assert "accept-encoding" in vary(r)
        assert r.content == BODY  # httpx decodes it
        assert int(r.headers["content-length"]) < len(BODY) // 5
    for accept in (None, "identity", "br;q=0, gzip;q=0", "deflate"):
        r = get(server, zone, path, accept)
        hits += 1
        assert r.headers["x-cache"] == "HIT" and "content-encoding" not in r.headers, accept
        assert r.headers["etag"] == '"v1"' and "accept-encoding" in vary(r)
        assert r.content == BODY
    found = settled(server, zone, hits)
    assert found['pullzone_compressions_total{encoding="br"}'] == br_before + 1
    assert found['pullzone_compressions_total{encoding="gzip"}'] == gzip_before + 1
    assert origin.count(path) == 1


@COMPRESSING
def test_curl_compressed_gets_brotli_at_the_zones_level(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    json_type = [("Content-Type", "application/json"), ("Cache-Control", "max-age=600")]
    origin.route(path, Reply(headers=json_type, body=BODY))
    get(server, zone, path, None)  # the fill
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--compressed",
            "-D",
            "-",
            "-H",
            f"Host: {zone['fqdn']}",
            server.edge_url + path,
        ],
        capture_output=True,
        timeout=30,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert b"content-encoding: br" in head.lower() and b"x-cache: hit" in head.lower()
    assert body == BODY  # curl decoded it
    head_text, sent = raw(server, zone, path, "Accept-Encoding: br")
    assert "content-encoding: br" in head_text
    assert sent == compress(BODY, "br", 5)  # the zone's compressionlevel


@COMPRESSING
def test_range_and_conditionals_apply_to_the_compressed_variant(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CSS, body=BODY))
    get(server, zone, path, "br")
    head, whole = raw(server, zone, path, "Accept-Encoding: br")
    assert "content-encoding: br" in head and brotli.decompress(whole) == BODY
    # RFC 9110 §14: ranges of the selected representation, the compressed bytes.
    head, part = raw(server, zone, path, "Accept-Encoding: br", "Range: bytes=10-99")
    assert head.startswith("http/1.1 206") and "content-encoding: br" in head
    assert f"content-range: bytes 10-99/{len(whole)}" in head
    assert part == whole[10:100]
    head, tail = raw(server, zone, path, "Accept-Encoding: gzip", "Range: bytes=-50")
    assert head.startswith("http/1.1 206") and "content-encoding: gzip" in head
    gz = raw(server, zone, path, "Accept-Encoding: gzip")[1]
    assert tail == gz[-50:] and decompress(gz, "gzip") == BODY
    head, part = raw(server, zone, path, "Range: bytes=0-9")  # the identity's bytes
    assert head.startswith("http/1.1 206") and part == BODY[:10]
    # A weak entity tag never satisfies If-Range (RFC 9110 §13.1.5): the whole variant.
    head, again = raw(
        server, zone, path, "Accept-Encoding: br", "Range: bytes=0-9", 'If-Range: W/"v1-br"'
    )
    assert head.startswith("http/1.1 200") and again == whole
    # If-None-Match compares weakly (RFC 9110 §13.1.2): each coding's own tag.
    r = get(server, zone, path, "br", **{"If-None-Match": 'W/"v1-br"'})
    assert r.status_code == 304 and r.headers["etag"] == 'W/"v1-br"'
    assert "accept-encoding" in vary(r)
    r = get(server, zone, path, "br", **{"If-None-Match": '"v1"'})
    assert r.status_code == 200 and r.headers["content-encoding"] == "br"
    r = get(server, zone, path, "identity", **{"If-None-Match": '"v1"'})
    assert r.status_code == 304 and r.headers["etag"] == '"v1"'
    r = get(server, zone, path, "gzip", **{"If-None-Match": '"x", W/"v1-gzip"'})
    assert r.status_code == 304
    # If-Match compares strongly: a weak tag never matches (RFC 9110 §13.1.1).
    r = get(server, zone, path, "br", **{"If-Match": 'W/"v1-br"'})
    assert r.status_code == 412
    with httpx.Client(base_url=server.edge_url) as client:
        r = client.head(path, headers={"Host": zone["fqdn"], "Accept-Encoding": "br"})
    assert r.headers["content-encoding"] == "br"
    assert int(r.headers["content-length"]) == len(whole)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([("Content-Type", "image/png")], b"\x89PNG" + BODY),
        ([("Content-Type", "application/zip")], BODY),
        ([("Content-Type", "text/css"), ("Content-Encoding", "gzip")], compress(BODY, "gzip", 1)),
        ([("Content-Type", "text/css"), ("Cache-Control", "max-age=60, no-transform")], BODY),
        ([("Content-Type", "text/css")], BODY[:1023]),
    ],
    ids=["png", "zip", "origin-gzip", "no-transform", "under-1KiB"],
)
@COMPRESSING
def test_never_compressed(
    server: Server,
    origin: Origin,
    zone: Zone,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    cached = [("Cache-Control", "max-age=600"), *headers]
    if any(n == "Cache-Control" for n, _ in headers):
        cached = headers
    origin.route(path, Reply(headers=cached, body=body))
    before = made(server, "br") + made(server, "gzip")
    for i in range(4):
        head, sent = raw(server, zone, path, "Accept-Encoding: br, gzip")
        assert ("x-cache: hit" in head) == (i > 0), head
        assert sent == body  # as the origin sent it, its coding included
        assert ("content-encoding: gzip" in head) == ("origin-gzip" in path)
        assert "content-encoding: br" not in head
        assert "accept-encoding" not in head.partition("vary:")[2].partition("\r\n")[0]
    found = settled(server, zone, 3)
    assert sum(v for k, v in found.items() if k.startswith("pullzone_compressions_total")) == before


def test_a_zone_without_compression_sends_what_the_origin_sent(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CSS, body=BODY))
    for i in range(3):
        head, sent = raw(server, zone, path, "Accept-Encoding: br, gzip")
        assert ("x-cache: hit" in head) == (i > 0)
        assert sent == BODY and "content-encoding" not in head and "vary" not in head


@COMPRESSING
def test_a_purge_removes_every_coding(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CSS, body=BODY))
    get(server, zone, path, "br")
    assert get(server, zone, path, "br").headers["content-encoding"] == "br"
    assert get(server, zone, path, "gzip").headers["content-encoding"] == "gzip"
    assert stored_rows(server, zone, path) == 3  # identity, br, gzip
    assert server.purge(zone["id"], [path], delete=True).status_code == 200
    assert stored_rows(server, zone, path) == 0
    before = settled(server, zone, 2)['pullzone_compressions_total{encoding="br"}']
    r = get(server, zone, path, "br")
    assert r.headers["x-cache"] == "MISS" and r.content == BODY
    r = get(server, zone, path, "br")  # the new identity is compressed anew
    assert r.headers["x-cache"] == "HIT" and r.headers["content-encoding"] == "br"
    found = settled(server, zone, 3)
    assert found['pullzone_compressions_total{encoding="br"}'] == before + 1
    assert origin.count(path) == 2


@COMPRESSING
def test_a_soft_purge_revalidates_and_keeps_the_variant(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    def answer(seen: Any) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=600")])
        return Reply(headers=CSS, body=BODY)

    origin.route(path, answer)
    get(server, zone, path, "br")
    assert get(server, zone, path, "br").headers["content-encoding"] == "br"
    before = settled(server, zone, 1)['pullzone_compressions_total{encoding="br"}']
    assert server.purge(zone["id"], [path]).status_code == 200
    r = get(server, zone, path, "br")
    assert r.headers["x-cache"] == "REVALIDATED" and r.content == BODY
    r = get(server, zone, path, "br")  # the same representation: its variant serves
    assert r.headers["x-cache"] == "HIT" and r.headers["content-encoding"] == "br"
    assert r.content == BODY
    found = settled(server, zone, 2)
    assert found['pullzone_compressions_total{encoding="br"}'] == before
    assert origin.count(path) == 2


def stored_rows(server: Server, zone: Zone, path: str) -> int:
    db = server.data_dir / "cache.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM objects WHERE zone_id = ? AND path = ?", (zone["id"], path)
        ).fetchone()
    return int(row[0])


@COMPRESSING
def test_concurrent_first_hits_compress_once(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CSS, body=BODY))
    get(server, zone, path, None)  # the fill
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _i: get(server, zone, path, "br"), range(48)))
    for r in answers:  # the variant, or the identity while another worker makes it
        assert r.status_code == 200 and r.headers["x-cache"] == "HIT"
        assert r.headers.get("content-encoding") in ("br", None) and r.content == BODY
    assert any(r.headers.get("content-encoding") == "br" for r in answers)
    found = settled(server, zone, len(answers))
    assert found['pullzone_compressions_total{encoding="br"}'] == 1


def test_switching_compression_on_serves_what_was_stored_compressed(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CSS, body=BODY))
    get(server, zone, path, "br")
    before = get(server, zone, path, "br")
    assert before.headers["x-cache"] == "HIT" and "vary" not in before.headers
    changed = server.api.post(f"/zones/http/pull/{zone['id']}/edge", json={"compression": "Y"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["zone"]["edge"]["compression"] == "Y"
    r = get(server, zone, path, "br")  # a change is applied before the API answers it
    assert r.headers["x-cache"] == "HIT" and r.headers["content-encoding"] == "br"
    assert r.content == BODY and "accept-encoding" in vary(r)
    plain = get(server, zone, path, "identity")  # stored before: Vary added as it is served
    assert plain.headers["x-cache"] == "HIT" and "accept-encoding" in vary(plain)
    assert origin.count(path) == 1
