"""Compression's pure decisions (edge/encoding.py): what may be compressed, which coding a
request gets, and the compressed variant's head."""

from __future__ import annotations

import pytest

from pullzone.cache.stored import ResponseHead
from pullzone.edge.encoding import (
    BR,
    GZIP,
    IDENTITY,
    MAX_SIZE,
    MIN_SIZE,
    choose_coding,
    compress,
    compressible_type,
    decompress,
    may_compress,
    stored_head,
    variant_head,
    variant_id,
    variant_key,
    weak_etag,
    with_vary,
)
from pullzone.spec.headers import header_map


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        (None, IDENTITY),
        ("", IDENTITY),
        ("gzip", GZIP),
        ("br", BR),
        ("gzip, deflate, br", BR),  # browsers: br preferred on a tie
        ("br;q=0.5, gzip", GZIP),  # RFC 9110 §12.5.3: the higher q-value wins
        ("gzip;q=0.8, br;q=0.9", BR),
        ("br;q=0, gzip", GZIP),
        ("br;q=0, gzip;q=0", IDENTITY),
        ("identity", IDENTITY),
        ("deflate", IDENTITY),
        ("*", BR),
        ("*;q=0.5, br;q=0", GZIP),
        ("*;q=0", IDENTITY),
        ("GZIP", GZIP),  # codings are case-insensitive (RFC 9110 §8.4.1)
        ("x-gzip", GZIP),
        ("gzip;q=0.001", GZIP),
        ("gzip;q=2", IDENTITY),  # not a qvalue: not acceptable
        ("gzip;q=abc", IDENTITY),
        (" br ; q=1.0 ,gzip", BR),
        (";;;,,,", IDENTITY),
    ],
)
def test_one_coding_per_request(accept: str | None, coding: str) -> None:
    assert choose_coding(accept) == coding


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("text/html; charset=utf-8", True),
        ("text/css", True),
        ("TEXT/PLAIN", True),
        ("application/json", True),
        ("application/ld+json", True),
        ("application/javascript", True),
        ("application/xml", True),
        ("application/atom+xml", True),
        ("image/svg+xml", True),
        ("application/wasm", True),
        ("text/event-stream", False),
        ("image/png", False),
        ("video/mp4", False),
        ("application/zip", False),
        ("application/gzip", False),
        ("application/octet-stream", False),
        ("", False),
        (None, False),
    ],
)
def test_compressible_types(content_type: str | None, ok: bool) -> None:
    assert compressible_type(content_type) is ok


def _hmap(*pairs: tuple[str, str]) -> dict[str, str]:
    return header_map([("Content-Type", "text/plain"), *pairs])


def test_what_may_be_compressed() -> None:
    assert may_compress(200, _hmap(), MIN_SIZE)
    assert may_compress(200, _hmap(), MAX_SIZE)
    assert may_compress(200, _hmap(), None)  # a fill of unknown length: decided again
    assert not may_compress(200, _hmap(), MIN_SIZE - 1)
    assert not may_compress(200, _hmap(), MAX_SIZE + 1)
    assert not may_compress(404, _hmap(), 5000)
    assert not may_compress(206, _hmap(), 5000)
    assert not may_compress(200, _hmap(("Content-Encoding", "gzip")), 5000)
    assert may_compress(200, _hmap(("Content-Encoding", "identity")), 5000)
    assert not may_compress(200, _hmap(("Cache-Control", "max-age=60, no-transform")), 5000)
    assert not may_compress(200, _hmap(("Vary", "*")), 5000)
    assert not may_compress(200, header_map([("Content-Type", "image/png")]), 5000)
    assert not may_compress(200, header_map([]), 5000)


def test_weak_etags_name_the_coding() -> None:
    assert weak_etag('"abc"', BR) == 'W/"abc-br"'
    assert weak_etag('W/"abc"', GZIP) == 'W/"abc-gzip"'
    assert weak_etag(None, BR) is None
    assert weak_etag("abc", BR) is None  # not an entity tag: none at all


def test_vary_gets_accept_encoding_once() -> None:
    assert with_vary((("A", "1"),)) == (("A", "1"), ("Vary", "Accept-Encoding"))
    assert with_vary((("Vary", "Origin"),)) == (("Vary", "Origin, Accept-Encoding"),)
    already = (("vary", "origin, accept-encoding"),)
    assert with_vary(already) is already


def _head(*headers: tuple[str, str], length: int = 4000) -> ResponseHead:
    return ResponseHead(
        status=200,
        reason="OK",
        headers=(("Content-Type", "text/css"), *headers),
        request_time=1.0,
        response_time=2.0,
        length=length,
        vary_names=("origin",),
        vary_values=("https://a.example",),
        tags=("t1",),
    )


def test_the_variant_head() -> None:
    head = variant_head(_head(("ETag", '"v1"'), ("Vary", "Origin")), BR, 321)
    hmap = header_map(head.headers)
    assert hmap["content-encoding"] == "br"
    assert hmap["etag"] == 'W/"v1-br"'
    assert hmap["vary"] == "Origin, Accept-Encoding"
    assert head.length == 321
    # The identity's Vary names and values, times and tags: it is the same response.
    assert head.vary_names == ("origin",) and head.vary_values == ("https://a.example",)
    assert head.tags == ("t1",) and head.response_time == 2.0


def test_a_fill_stores_vary_only_where_compression_applies() -> None:
    head = _head()
    assert stored_head(False, head) is head
    assert header_map(stored_head(True, head).headers)["vary"] == "Accept-Encoding"
    small = _head(length=100)
    assert stored_head(True, small) is small
    png = ResponseHead(200, "OK", (("Content-Type", "image/png"),), 1.0, 2.0, 5000)
    assert stored_head(True, png) is png
    # the index is not split by Accept-Encoding: the edge chooses the coding
    assert stored_head(True, head).vary_names == ("origin",)


@pytest.mark.parametrize("coding", [BR, GZIP])
@pytest.mark.parametrize("level", [1, 6, 9])
def test_compression_round_trips(coding: str, level: int) -> None:
    body = b"body { color: red; }\n" * 500
    data = compress(body, coding, level)
    assert len(data) < len(body) // 10
    assert decompress(data, coding) == body


def test_gzip_is_deterministic() -> None:
    body = b"x" * 5000
    assert compress(body, GZIP, 6) == compress(body, GZIP, 6)  # no timestamp in the header


def test_variant_names_never_collide_with_request_keys() -> None:
    key = "1\x00/a.css\x00"
    assert variant_key(key, BR).count("\x00") == 3  # a request key has two separators
    assert variant_id("ab" * 16, GZIP) == "ab" * 16 + ".gzip"
