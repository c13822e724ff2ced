"""Compression at the edge (the zone's `edge.compression`), its pure decisions: which
stored responses may be compressed, which content coding a request gets, and the head
of a compressed variant. The I/O that executes them is edge/compress.py.

A compressed variant is its own stored object, derived once from the stored identity
body: its id is the identity's id with the coding appended, so a variant can only ever
be one of the identity it was made from (a new fill has a new id, a 304 keeps it).
"""

from __future__ import annotations

import dataclasses
import gzip
import zlib

import brotli

from pullzone.cache.stored import ResponseHead
from pullzone.spec.cache_control import parse_cache_control
from pullzone.spec.headers import HeaderMap, header_map, split_list
from pullzone.spec.vary import coding_weights

BR = "br"
GZIP = "gzip"
IDENTITY = "identity"
CODINGS = (BR, GZIP)  # in order of preference when a client accepts both equally

MIN_SIZE = 1024  # smaller bodies gain too little for the coding's framing and CPU
# Larger bodies are served uncompressed: a compression holds the whole body and its
# result in memory, and at this size takes a thread about 4 s at brotli's 9 (1.7 s at
# gzip's 9; both release the GIL, so the worker's event loop goes on meanwhile).
MAX_SIZE = 8 * 1024 * 1024

_TYPES = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/xml",
        "application/wasm",
        "image/svg+xml",
    }
)
_NOT_TEXT = frozenset({"text/event-stream"})  # a stream: never held whole


def compressible_type(content_type: str | None) -> bool:
    """text/*, JSON, JavaScript, XML, SVG and wasm (with +json and +xml types)."""
    if not content_type:
        return False
    mime = content_type.partition(";")[0].strip().lower()
    if mime.startswith("text/"):
        return mime not in _NOT_TEXT
    return mime in _TYPES or mime.endswith(("+json", "+xml"))


def may_compress(status: int, hmap: HeaderMap, length: int | None) -> bool:
    """Whether a stored response may get compressed variants: a 200 of a compressible
    type the origin sent without a content coding, that allows transformation (RFC 9110
    §7.7, RFC 9111 §5.2.2.6 no-transform), of MIN_SIZE to MAX_SIZE bytes (`length`
    None: not known yet, as for a fill of chunked body)."""
    if status != 200 or not compressible_type(hmap.get("content-type")):
        return False
    coding = hmap.get("content-encoding")
    if coding and coding.strip().lower() != IDENTITY:
        return False
    if "content-range" in hmap or "*" in split_list(hmap.get("vary")):
        return False
    if "no-transform" in parse_cache_control(hmap.get("cache-control")):
        return False
    return length is None or MIN_SIZE <= length <= MAX_SIZE


def choose_coding(accept_encoding: str | None) -> str:
    """The one content coding a request gets (RFC 9110 §12.5.3): br or gzip, whichever
    has the higher q-value (br on a tie), `*` standing for either when it is not named;
    identity when neither is acceptable (q=0), and when the request has no
    Accept-Encoding (most clients that want compression say so)."""
    if not accept_encoding:
        return IDENTITY
    weights = coding_weights(accept_encoding)
    star = weights.get("*", 0.0)
    best, best_q = IDENTITY, 0.0
    for coding in CODINGS:
        q = weights.get(coding, star)
        if q > best_q:
            best, best_q = coding, q
    return best


def variant_id(identity_id: str, coding: str) -> str:
    return f"{identity_id}.{coding}"


def variant_key(key: str, coding: str) -> str:
    """The cache key of a compressed variant's own index row (and of its collapsed
    compression): distinct from every request's key, which has three parts."""
    return f"{key}\x00{coding}"


def weak_etag(etag: str | None, coding: str) -> str | None:
    """The variant's entity tag: weak (the bytes differ from the identity's, and another
    compressor would make other bytes), naming its coding (RFC 9110 §8.8.3)."""
    if not etag:
        return None
    opaque = etag[2:] if etag.startswith("W/") else etag
    if len(opaque) < 2 or not opaque.startswith('"') or not opaque.endswith('"'):
        return None
    return f'W/"{opaque[1:-1]}-{coding}"'


def with_vary(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """`headers` with Accept-Encoding in Vary (RFC 9110 §12.5.5), added once."""
    names = [n for n, v in headers if n.lower() == "vary" for n in split_list(v)]
    if any(n.lower() == "accept-encoding" for n in names):
        return headers
    kept = tuple((n, v) for n, v in headers if n.lower() != "vary")
    return (*kept, ("Vary", ", ".join([*names, "Accept-Encoding"])))


def has_vary(headers: tuple[tuple[str, str], ...]) -> bool:
    return with_vary(headers) is headers


def stored_head(compression: bool, head: ResponseHead) -> ResponseHead:
    """The head a fill stores: in a zone with `compression`, a response that may be
    compressed says that it varies on Accept-Encoding (RFC 9110 §12.5.5) in every answer,
    the identity's too; the index does not split it by Accept-Encoding (its Vary names
    were taken before): the edge chooses the coding (`choose_coding`)."""
    if not compression or not may_compress(head.status, header_map(head.headers), head.length):
        return head
    return dataclasses.replace(head, headers=with_vary(head.headers))


def variant_head(identity: ResponseHead, coding: str, size: int) -> ResponseHead:
    """The head of `identity` compressed with `coding` into `size` bytes: its fields
    with Content-Encoding, a weak ETag and Vary: Accept-Encoding; the identity's Vary
    names and values, so the index keeps one variant per identity variant."""
    etag = None
    headers = []
    for name, value in identity.headers:
        lower = name.lower()
        if lower == "etag":
            etag = value
        elif lower != "content-encoding":
            headers.append((name, value))
    weak = weak_etag(etag, coding)
    if weak is not None:
        headers.append(("ETag", weak))
    headers.append(("Content-Encoding", coding))
    return dataclasses.replace(identity, headers=with_vary(tuple(headers)), length=size)


def compress(body: bytes, coding: str, level: int) -> bytes:
    """`body` in `coding` at `level` 1 to 9 (brotli's quality, zlib's level)."""
    if coding == BR:
        data: bytes = brotli.compress(body, quality=level)
        return data
    if coding == GZIP:
        return gzip.compress(body, compresslevel=level, mtime=0)
    raise ValueError(f"unknown content coding {coding!r}")


def decompress(data: bytes, coding: str) -> bytes:
    """The inverse of `compress` (for tests and checks)."""
    if coding == BR:
        out: bytes = brotli.decompress(data)
        return out
    return zlib.decompress(data, 31)
