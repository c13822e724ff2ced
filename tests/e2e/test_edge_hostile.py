"""Hostile input at the edge, over raw sockets to a real `pullzone serve`.

Request smuggling, oversized and malformed requests, invalid Host, absolute-form targets
naming other hosts (never an open proxy), path traversal, CR/LF and NUL injection, cache
poisoning through unkeyed headers and cache deception. Every test asserts what the client
got and what the origin saw (or that it saw nothing). docs/hardening.md has the table.
"""

from __future__ import annotations

import re
import select
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from origin import Origin, Reply, Seen
from server import Server

Zone = dict[str, Any]


def slugs(values: Iterable[object]) -> list[str]:
    """Test ids safe inside the `path` fixture's path (no /, %, spaces)."""
    return [re.sub(r"[^A-Za-z0-9_]+", "-", str(v)).strip("-") or "empty" for v in values]


# -- a raw HTTP/1.1 client ------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Exchange:
    answers: list[Answer]
    closed: bool  # the edge closed the connection (EOF) after its answers
    raw: bytes


def _parse(raw: bytes) -> list[Answer]:
    """The responses in `raw` (Content-Length framing, as every answer here has)."""
    answers = []
    rest = raw
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {head!r}"
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:
            continue
        length = int(headers.get("content-length", "0"))
        answers.append(Answer(status, headers, rest[:length]))
        rest = rest[length:]
    return answers


def exchange(
    server: Server, data: bytes, timeout: float = 10.0, then: bytes | None = None
) -> Exchange:
    """Send `data` on a fresh connection (and `then`, once the edge has answered) and
    read until the edge closes it (or `timeout` passes with the connection still open:
    `closed` is then False)."""
    raw = b""
    closed = False
    with socket.create_connection(("127.0.0.1", server.edge_port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if then is not None:
                select.select([s], [], [], timeout)  # the edge's answer has arrived
                s.sendall(then)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                raw += chunk
        except TimeoutError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            closed = True
    return Exchange(_parse(raw), closed, raw)


def seen_total(origin: Origin) -> int:
    with origin._lock:
        return sum(len(v) for v in origin.seen.values())


def all_seen(origin: Origin) -> list[Seen]:
    with origin._lock:
        return [s for v in origin.seen.values() for s in v]


@pytest.fixture(scope="module", autouse=True)
def module_start(origin: Origin) -> set[int]:
    """What the origin had seen before this module's first test."""
    return {id(s) for s in all_seen(origin)}


@pytest.fixture()
def untouched(origin: Origin) -> Iterator[None]:
    """The test's requests must never reach the origin."""
    before = seen_total(origin)
    yield
    assert seen_total(origin) == before, "a rejected request reached the origin"


@pytest.fixture()
def no_tracebacks(server: Server) -> Iterator[None]:
    """The edge logs no unexpected exception (a crash of a handler or worker) meanwhile."""
    before = server.output().count("Traceback")
    yield
    assert server.output().count("Traceback") == before, server.output()[-3000:]


def assert_rejected(x: Exchange, status: int | tuple[int, ...]) -> None:
    """One error answer, then the connection closed: nothing after it is parsed."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert len(x.answers) == 1, x.raw
    assert x.answers[0].status in statuses, x.raw
    assert x.answers[0].headers.get("connection") == "close", x.raw
    assert x.closed, "the edge kept the connection open after a rejected request"


def plain_get_works(server: Server, zone: Zone, origin: Origin, path: str) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"still here"))
    r = server.get(zone["fqdn"], path)
    assert (r.status_code, r.content) == (200, b"still here")


# -- request smuggling (RFC 9112 §6) --------------------------------------------------

# Each: a request whose framing two parsers could read differently, followed by a second
# request ("{smuggled}") that a lax front end would forward as a request of its own.
SMUGGLING = {
    "CL.TE": "Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE.CL": "Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n\r\n0\r\n\r\n",
    "CL.CL different": "Content-Length: 5\r\nContent-Length: {n}\r\n\r\nhello",
    "CL list": "Content-Length: 5, {n}\r\n\r\nhello",
    "CL plus sign": "Content-Length: +5\r\n\r\nhello",
    "CL negative": "Content-Length: -1\r\n\r\n",
    "CL hex": "Content-Length: 0x5\r\n\r\nhello",
    "TE xchunked": "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "TE space before colon": "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "TE obs-fold": "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "TE chunked not final": "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "TE chunked twice": "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE identity with CL": "Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
    "chunk size not hex": "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk size overflow": "Transfer-Encoding: chunked\r\n\r\n" + "f" * 20 + "\r\nx\r\n0\r\n\r\n",
    "chunk bare LF": "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    "chunk data longer than size": "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("framing", list(SMUGGLING), ids=slugs(SMUGGLING))
def test_ambiguous_framing_is_400_and_closes_and_nothing_is_forwarded(
    server: Server, origin: Origin, zone: Zone, path: str, framing: str, untouched: None
) -> None:
    smuggled = f"GET {path}.smuggled HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n"
    head = f"POST {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n"
    x = exchange(server, (head + SMUGGLING[framing].format(n=40) + smuggled).encode())
    assert_rejected(x, 400)


def test_an_unknown_transfer_coding_under_chunked_is_501(
    server: Server, origin: Origin, zone: Zone, path: str, untouched: None
) -> None:
    # RFC 9112 §6.1: chunked is final (framing is clear), gzip is not understood.
    x = exchange(
        server,
        f"POST {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n"
        "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".encode(),
    )
    assert_rejected(x, 501)


def test_transfer_encoding_in_http_1_0_is_400(
    server: Server, origin: Origin, zone: Zone, path: str, untouched: None
) -> None:
    # RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    x = exchange(
        server,
        f"POST {path} HTTP/1.0\r\nHost: {zone['fqdn']}\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {path} HTTP/1.0\r\n\r\n".encode(),
    )
    assert_rejected(x, 400)


def test_a_rejection_waits_for_the_pipelined_response_before_it(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """A bad request pipelined behind a slow MISS: the MISS is answered whole, then the 400,
    then the connection closes (RFC 9112 §9.3.2), and the smuggled request never runs."""
    body = b"m" * 50_000
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=body, delay=0.3))
    good = f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n"
    bad = f"POST {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\nContent-Length: 40\r\n"
    bad += "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    smuggled = f"GET {path}.smuggled HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n"
    x = exchange(server, (good + bad + smuggled).encode())
    assert [(a.status, a.body == body) for a in x.answers] == [(200, True), (400, False)], x.raw
    assert x.closed
    assert origin.count(path) == 1
    assert origin.count(f"{path}.smuggled") == 0


def test_a_100_continue_never_lands_inside_an_earlier_response(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """`Expect: 100-continue` on a request pipelined behind a slow MISS: no interim 100 is
    written while the MISS is being answered; both answers arrive in order."""
    body = b"m" * 50_000
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=body, delay=0.3))
    origin.route(f"{path}.post", Reply(body=b"posted"))
    x = exchange(
        server,
        f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n"
        f"POST {path}.post HTTP/1.1\r\nHost: {zone['fqdn']}\r\nContent-Length: 5\r\n"
        "Expect: 100-continue\r\nConnection: close\r\n\r\nhello".encode(),
    )
    assert x.raw.startswith(b"HTTP/1.1 200 ") and b" 100 Continue" not in x.raw, x.raw[:300]
    assert [(a.status, a.body) for a in x.answers] == [(200, body), (200, b"posted")]
    assert [s.body for s in origin.seen[f"{path}.post"]] == [b"hello"]


def test_a_get_with_a_body_is_filled_without_it(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """The client's Content-Length is never forwarded with a fill (which has no body): the
    origin would wait for bytes that never come, and every client collapsed onto the fill
    would get its 504."""
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"page"))
    x = exchange(
        server,
        f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\nContent-Length: 5\r\n"
        "Expect: 100-continue\r\nConnection: close\r\n\r\nhello".encode(),
    )
    assert [(a.status, a.body) for a in x.answers] == [(200, b"page")], x.raw
    [seen] = origin.seen[path]
    assert (seen.body, seen.headers.get("content-length", "0")) == (b"", "0")
    assert "expect" not in seen.headers
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"


def test_a_post_body_reaches_the_origin_with_its_own_length(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(body=b"ok"))
    x = exchange(
        server,
        f"POST {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".encode(),
    )
    assert [a.status for a in x.answers] == [200], x.raw
    [seen] = origin.seen[path]
    assert (seen.method, seen.body) == ("POST", b"hello world")
    assert seen.headers["content-length"] == "11"
    assert "transfer-encoding" not in seen.headers


# -- oversized requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("url 9 KiB", 414),
        ("one header of 40 KiB", 431),
        ("200 header lines", 431),
        ("header block over 32 KiB in small fields", 431),
        ("declared body of 17 MiB", 413),
    ],
    ids=["url-9KiB", "header-40KiB", "200-headers", "header-block-35KiB", "body-17MiB"],
)
def test_oversized_requests_get_their_status_and_the_edge_keeps_serving(
    server: Server,
    origin: Origin,
    zone: Zone,
    path: str,
    case: str,
    status: int,
    no_tracebacks: None,
) -> None:
    host = f"Host: {zone['fqdn']}\r\n"
    request = {
        "url 9 KiB": f"GET /{'a' * 9 * 1024} HTTP/1.1\r\n{host}\r\n",
        "one header of 40 KiB": f"GET {path} HTTP/1.1\r\n{host}X-Big: {'b' * 40 * 1024}\r\n\r\n",
        "200 header lines": f"GET {path} HTTP/1.1\r\n{host}"
        + "".join(f"X-H{i}: 1\r\n" for i in range(200))
        + "\r\n",
        "header block over 32 KiB in small fields": f"GET {path} HTTP/1.1\r\n{host}"
        + "".join(f"X-H{i}: {'v' * 500}\r\n" for i in range(70))
        + "\r\n",
        "declared body of 17 MiB": f"POST {path} HTTP/1.1\r\n{host}"
        f"Content-Length: {17 * 1024 * 1024}\r\n\r\n" + "x" * 1024,
    }[case]
    before = seen_total(origin)
    assert_rejected(exchange(server, request.encode()), status)
    assert seen_total(origin) == before
    plain_get_works(server, zone, origin, path)


def test_a_megabyte_url_is_refused_without_harm(
    server: Server, origin: Origin, zone: Zone, path: str, no_tracebacks: None
) -> None:
    before = seen_total(origin)
    # The URL's first 64 KiB, and the rest once the edge has had time to answer: what
    # arrives after the answer must not make the kernel reset the connection.
    x = exchange(
        server,
        b"GET /" + b"a" * 64 * 1024,
        then=b"a" * 1024 * 1024 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    # The edge stops parsing at 8 KiB, answers 414 and closes without a reset (it
    # drops what is still coming, as nginx's lingering close), so the answer arrives.
    assert x.closed
    assert [a.status for a in x.answers] == [414], x.raw
    assert seen_total(origin) == before
    plain_get_works(server, zone, origin, path)


# -- Host -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host_lines",
    [
        "",  # no Host in HTTP/1.1
        "Host: {zone}\r\nHost: evil.example\r\n",
        "Host: evil.example\r\nHost: {zone}\r\n",
        "Host: {zone} evil.example\r\n",
        "Host: evil.example@{zone}\r\n",
        "Host: {zone}/x\r\n",
        "Host: {zone}:80:80\r\n",
        "Host: {zone}\\\r\n",
        "Host: [{zone}]\r\n",
    ],
    ids=[
        "missing",
        "twice",
        "twice-other-first",
        "space",
        "userinfo",
        "slash",
        "two-ports",
        "backslash",
        "bad-ip-literal",
    ],
)
def test_missing_repeated_or_invalid_host_is_400(
    server: Server, origin: Origin, zone: Zone, path: str, host_lines: str, untouched: None
) -> None:
    x = exchange(
        server, f"GET {path} HTTP/1.1\r\n{host_lines}\r\n".format(zone=zone["fqdn"]).encode()
    )
    assert_rejected(x, 400)


def test_a_valid_host_of_no_zone_is_404_and_not_forwarded(
    server: Server, origin: Origin, path: str, untouched: None
) -> None:
    for host in ("evil.example", f"127.0.0.1:{origin.port}", "localhost", "[::1]:8080"):
        x = exchange(
            server, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        assert [a.status for a in x.answers] == [404], (host, x.raw)


# -- never an open proxy ----------------------------------------------------------------


ABSOLUTE_TARGETS = [
    "http://evil.example{path}",
    "http://127.0.0.1:{port}{path}",
    "https://127.0.0.1:{port}{path}",
    "http://{zone}@127.0.0.1:{port}{path}",
    "http://127.0.0.1:{port}@evil.example{path}",
    "HTTP://EVIL.EXAMPLE{path}",
    "ftp://{zone}{path}",
    "127.0.0.1:{port}{path}",
]


@pytest.mark.parametrize("target", ABSOLUTE_TARGETS, ids=slugs(ABSOLUTE_TARGETS))
def test_absolute_form_naming_another_host_is_never_forwarded(
    server: Server, origin: Origin, zone: Zone, path: str, target: str, untouched: None
) -> None:
    target = target.format(path=path, port=origin.port, zone=zone["fqdn"])
    x = exchange(
        server,
        f"GET {target} HTTP/1.1\r\nHost: {zone['fqdn']}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert len(x.answers) == 1 and x.answers[0].status in (400, 404), x.raw


def test_origin_form_with_a_double_slash_stays_on_the_zones_origin(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """`//host/path` is a path (RFC 9112 §3.2.1), appended to the zone's origin URL: the
    request goes to the origin's own host, never to evil.example."""
    target = f"//evil.example{path}"
    # The test origin (http.server) reads a leading "//" as "/" (CPython gh-87389).
    on_origin = target[1:]
    origin.route(on_origin, Reply(body=b"on the origin"))
    x = exchange(
        server,
        f"GET {target} HTTP/1.1\r\nHost: {zone['fqdn']}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert [(a.status, a.body) for a in x.answers] == [(200, b"on the origin")], x.raw
    [seen] = origin.seen[on_origin]
    assert seen.headers["host"] == f"127.0.0.1:{origin.port}"


def test_absolute_form_naming_the_zone_is_served_by_the_zone_whatever_the_host(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    # RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host.
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"zone"))
    x = exchange(
        server,
        f"GET http://{zone['fqdn']}{path} HTTP/1.1\r\nHost: evil.example\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    assert [(a.status, a.body) for a in x.answers] == [(200, b"zone")], x.raw
    [seen] = origin.seen[path]
    assert seen.headers["host"] == f"127.0.0.1:{origin.port}"


def test_connect_is_refused_and_nothing_is_tunnelled(
    server: Server, origin: Origin, zone: Zone, path: str, untouched: None
) -> None:
    tunnelled = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n\r\n"
    x = exchange(
        server,
        f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n\r\n"
        f"{tunnelled}".encode(),
    )
    assert_rejected(x, 501)


@pytest.mark.parametrize("upgrade", ["h2c", "websocket"])
def test_upgrade_is_ignored_and_the_connection_closes_after_the_answer(
    server: Server, origin: Origin, zone: Zone, path: str, upgrade: str
) -> None:
    """h2c smuggling: a front end that passes Upgrade on lets the client talk to the origin
    directly. The edge answers the request itself, never 101, never forwards Upgrade, and
    reads nothing more from the connection."""
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"plain"))
    x = exchange(
        server,
        f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n"
        f"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: {upgrade}\r\n"
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        f"GET {path}.after-upgrade HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n".encode(),
    )
    assert [(a.status, a.body) for a in x.answers] == [(200, b"plain")], x.raw
    assert x.answers[0].headers.get("connection") == "close"
    assert x.closed
    [seen] = origin.seen[path]
    assert not {"upgrade", "http2-settings", "connection"} & set(seen.headers)
    assert origin.count(f"{path}.after-upgrade") == 0


# -- traversal, CR/LF and NUL in paths ------------------------------------------------

BAD_PATHS = [
    "/a/../{p}",
    "/../{p}",
    "/%2e%2e/{p}",
    "/%2E%2E/{p}",
    "/a/.%2e/{p}",
    "/a/..%2f..%2f{p}",
    "/a/%2e%2e%2f{p}",
    "/a/..%5c{p}",
    "/a\\..\\{p}",
    "/./{p}",
    "/a/%2e/{p}",
    "/a/..",
    "{p}%0d%0aSet-Cookie:%20pwned=1",
    "{p}%0aLocation:%20http://evil.example/",
    "{p}%0d",
    "{p}%00.css",
    "{p}%7f",
    "{p}#fragment",
    "http://{zone}/a/../{p}",
]


@pytest.mark.parametrize("bad", BAD_PATHS, ids=slugs(BAD_PATHS))
def test_dot_segments_and_control_characters_in_paths_are_400(
    server: Server, origin: Origin, zone: Zone, path: str, bad: str, untouched: None
) -> None:
    target = bad.format(p=path.lstrip("/"), zone=zone["fqdn"])
    target = target if target.startswith(("/", "http")) else "/" + target
    x = exchange(server, f"GET {target} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n".encode())
    assert_rejected(x, 400)
    assert not {"set-cookie", "location"} & set(x.answers[0].headers)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /a\x00b HTTP/1.1\r\nHost: {zone}\r\n\r\n",
        b"GET /a\rSet-Cookie: pwned=1 HTTP/1.1\r\nHost: {zone}\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: {zone}\r\nX-A: b\x00c\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: {zone}\r\nX-A: b\rSet-Cookie: pwned=1\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: {zone}\r\nX-A: b\nSet-Cookie: pwned=1\r\n\r\n",
        b"GET /a HTTP/1.1\nHost: {zone}\n\n",
        b"GET /a HTTP/1.1\r\nHost: {zone}\r\nX\x00A: b\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: {zone}\r\nX A: b\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: {zone}\r\n: no-name\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: {zone}\r\nX-A: b\r\n c\r\n\r\n",
        b"G(T /a HTTP/1.1\r\nHost: {zone}\r\n\r\n",
        b"GET /a HTTP/1.7\r\nHost: {zone}\r\n\r\n",
        b"GET /a HTTP/2.0\r\nHost: {zone}\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the HTTP port
    ],
    ids=[
        "NUL in path",
        "CR in request line",
        "NUL in field value",
        "CR in field value",
        "LF in field value",
        "bare LF line endings",
        "NUL in field name",
        "space in field name",
        "empty field name",
        "obs-fold",
        "bad method token",
        "HTTP/1.7",
        "HTTP/2.0 text",
        "h2 preface",
        "TLS hello",
    ],
)
def test_malformed_requests_are_400_and_close(
    server: Server, origin: Origin, zone: Zone, raw: bytes, untouched: None
) -> None:
    data = raw.replace(b"{zone}", zone["fqdn"].encode())
    x = exchange(server, data)
    assert_rejected(x, (400, 505))  # 505: HTTP/2.0 in text
    assert "set-cookie" not in x.answers[0].headers


def test_near_misses_of_bad_paths_are_forwarded_untouched(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """Dots inside names, encoded slashes and encoded CR/LF in the query are not traversal
    or injection: they reach the origin still percent-encoded (the encodings in upper
    case, RFC 3986 §6.2.2)."""
    for target, forwarded in (
        (f"{path}/a..b/..c/d../file..txt", f"{path}/a..b/..c/d../file..txt"),
        (f"{path}/a%2Fb/.well-known/x", f"{path}/a%2Fb/.well-known/x"),
        (
            f"{path}/x?q=%0d%0aSet-Cookie:%20a=1&r=../..",
            f"{path}/x?q=%0D%0ASet-Cookie:%20a=1&r=../..",
        ),
    ):
        origin.route(forwarded, Reply(body=b"ok"))
        r = server.get(zone["fqdn"], target)
        assert (r.status_code, r.content) == (200, b"ok"), target
        assert "set-cookie" not in r.headers
        assert [s.path for s in origin.seen[forwarded]] == [forwarded]


# -- cache poisoning through unkeyed headers ------------------------------------------

UNKEYED = [
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Server", "evil.example"),
    ("X-Forwarded-Scheme", "nothttps"),
    ("X-Forwarded-Port", "evil-port"),
    ("X-Forwarded-Prefix", "/evil"),
    ("X-Original-URL", "/admin"),
    ("X-Original-Host", "evil.example"),
    ("X-Rewrite-URL", "/admin"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("X-HTTP-Method", "DELETE"),
    ("X-Method-Override", "DELETE"),
    ("X-Host", "evil.example"),
    ("Forwarded", "host=evil.example;proto=http"),
    ("X_Forwarded_Host", "evil.example"),
    ("X-Forwarded-Proto", "evil"),
    ("X-Forwarded-SSL", "ON"),
    ("Front-End-Https", "ON"),
    ("X-Url-Scheme", "https"),
    ("X-Forwarded-Uri", "/admin"),
    ("X-Envoy-Original-Path", "/admin"),
    ("X-Override-URL", "/admin"),
]


def _reflecting(seen: Seen) -> Reply:
    """An origin that trusts override headers, as many frameworks do: its answer depends
    on them, and it does not say Vary (the poisoning precondition)."""
    leaked = sorted(
        f"{k}={v}"
        for k, v in seen.headers.items()
        if k.replace("_", "-") in {n.lower() for n, _ in UNKEYED} and k != "x-forwarded-proto"
    )
    if seen.headers.get("x-forwarded-proto") not in (None, "http"):
        leaked.append(f"x-forwarded-proto={seen.headers['x-forwarded-proto']}")
    body = f"poisoned by {leaked}" if leaked else f"normal {seen.method} {seen.path}"
    return Reply(headers=[("Cache-Control", "max-age=60")], body=body.encode())


@pytest.mark.parametrize(("name", "value"), UNKEYED, ids=[n for n, _ in UNKEYED])
def test_unkeyed_override_headers_never_change_what_others_are_served(
    server: Server, origin: Origin, zone: Zone, path: str, name: str, value: str
) -> None:
    origin.route(path, _reflecting)
    attacker = exchange(
        server,
        f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n{name}: {value}\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    normal = f"normal GET {path}".encode()
    assert [(a.status, a.body) for a in attacker.answers] == [(200, normal)], attacker.raw
    victim = server.get(zone["fqdn"], path)
    assert (victim.headers["x-cache"], victim.content) == ("HIT", normal)
    [seen] = origin.seen[path]
    assert seen.method == "GET"
    assert name.lower() == "x-forwarded-proto" or name.lower() not in seen.headers
    assert value not in " ".join(seen.headers.values())


def test_one_clients_origin_cookies_never_reach_another_clients_request(
    server: Server, origin: Origin, path: str
) -> None:
    """The edge's origin client is shared by every client of a worker: it must keep no
    cookie jar, or a session cookie the origin set for one user would be sent along with
    everyone's later requests. (A jar refuses cookies from an IP address, hence an origin
    named by hostname here.)"""
    zone = server.create_zone(
        f"http://localhost:{origin.port}",
        alias="cookiejar",
        hostHeader=f"127.0.0.1:{origin.port}",  # what the module's last test expects
    )
    login, later = f"{path}/login", f"{path}/later"
    origin.route(login, Reply(headers=[("Set-Cookie", "session=alice; Path=/")], body=b"welcome"))
    origin.route(later, Reply(headers=[("Cache-Control", "no-store")], body=b"page"))
    for worker_turn in range(6):  # new connections: every worker's origin client in turn
        answer = httpx.post(server.edge_url + login, headers={"Host": zone["fqdn"]})
        assert answer.headers.get("set-cookie") == "session=alice; Path=/", worker_turn
    for _ in range(6):
        assert httpx.get(server.edge_url + later, headers={"Host": zone["fqdn"]}).content == b"page"
    assert [seen.headers.get("cookie") for seen in origin.seen[later]] == [None] * 6


def test_override_headers_are_dropped_on_pass_through_too(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, _reflecting)
    r = server.edge.post(
        path,
        headers={
            "Host": zone["fqdn"],
            "X-HTTP-Method-Override": "DELETE",
            "X-Original-URL": "/admin",
        },
        content=b"x",
    )
    assert (r.status_code, r.headers["x-cache"], r.content) == (
        200,
        "BYPASS",
        f"normal POST {path}".encode(),
    )


def test_a_header_named_in_connection_is_not_forwarded(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    # RFC 9110 §7.6.1: fields listed in Connection are hop-by-hop.
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"x"))
    server.get(zone["fqdn"], path, headers={"Connection": "X-Secret", "X-Secret": "1"})
    [seen] = origin.seen[path]
    assert "x-secret" not in seen.headers


# -- cache deception --------------------------------------------------------------------


def _account_page(extra: list[tuple[str, str]]) -> Any:
    def script(seen: Seen) -> Reply:
        who = seen.headers.get("cookie", "anonymous")
        return Reply(
            headers=[("Content-Type", "text/html; charset=utf-8"), *extra],
            body=f"<h1>account of {who}</h1>".encode(),
        )

    return script


DECEPTION_TARGETS = [
    "/account.php/x.css",
    "/account.php/nonexistent.js",
    "/account.php/logo.png",
    "/account.php;x.css",
    "/account.php%2Fx.css",
    "/account.php%3Bx.css",
    "/account.php/x.woff2",
]


@pytest.mark.parametrize("target", DECEPTION_TARGETS, ids=slugs(DECEPTION_TARGETS))
@pytest.mark.parametrize(
    "cache_headers",
    [
        [],
        [("Cache-Control", "private")],
        [("Cache-Control", "no-store")],
        [("Set-Cookie", "s=1")],
        [("Cache-Control", "private, max-age=600")],
    ],
    ids=["no-cache-headers", "private", "no-store", "set-cookie", "private-max-age"],
)
def test_a_dynamic_page_under_a_static_looking_path_is_not_cached(
    server: Server,
    origin: Origin,
    zone: Zone,
    path: str,
    target: str,
    cache_headers: list[tuple[str, str]],
) -> None:
    target = path.rpartition("/")[0] + target
    origin.route(target, _account_page(cache_headers))
    # Fresh clients: no cookie jar carries one answer's Set-Cookie into the next request.
    url, host = server.edge_url + target, {"Host": zone["fqdn"]}
    victim = httpx.get(url, headers={**host, "Cookie": "session=alice"})
    assert victim.content == b"<h1>account of session=alice</h1>"
    attacker = httpx.get(url, headers=host)
    assert attacker.headers["x-cache"] in ("MISS", "BYPASS")
    assert attacker.content == b"<h1>account of anonymous</h1>"
    assert origin.count(target) == 2


PERSONAL_TARGETS = ["/account", "/account?cb=1", "/account.php/x.json", "/api/me"]


@pytest.mark.parametrize("target", PERSONAL_TARGETS, ids=slugs(PERSONAL_TARGETS))
def test_a_page_asked_for_with_a_cookie_is_not_stored_on_the_zone_ttl(
    server: Server, origin: Origin, zone: Zone, path: str, target: str
) -> None:
    """No disguise needed: the victim's page, asked for with their Cookie and given no
    lifetime by the origin, must not be served to the next visitor (edge/deception.py)."""
    target = path.rpartition("/")[0] + target
    origin.route(target.partition("?")[0], _account_page([]))
    url, host = server.edge_url + target, {"Host": zone["fqdn"]}
    victim = httpx.get(url, headers={**host, "Cookie": "session=alice"})
    assert victim.content == b"<h1>account of session=alice</h1>"
    attacker = httpx.get(url, headers=host)
    assert (attacker.headers["x-cache"], attacker.content) == (
        "MISS",
        b"<h1>account of anonymous</h1>",
    )


def test_assets_asked_for_with_a_cookie_are_still_cached_on_the_zone_ttl(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    path = path.replace(".txt", ".png")
    origin.route(path, Reply(headers=[("Content-Type", "image/png")], body=b"png"))
    cookie = {"Cookie": "_ga=GA1.1.1"}
    server.get(zone["fqdn"], path, headers=cookie)
    assert server.get(zone["fqdn"], path, headers=cookie).headers["x-cache"] == "HIT"


@pytest.mark.parametrize(
    "cache_headers",
    [
        [("Cache-Control", "max-age=60")],
        [("Cache-Control", "public")],
        [("Cache-Control", "s-maxage=60")],
        [("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")],
    ],
    ids=["max-age", "public", "s-maxage", "expires"],
)
def test_a_page_under_a_static_looking_path_is_cached_when_the_origin_says_so(
    server: Server, origin: Origin, zone: Zone, path: str, cache_headers: list[tuple[str, str]]
) -> None:
    target = path.rpartition("/")[0] + "/page.php/x.css"
    origin.route(target, _account_page(cache_headers))
    server.get(zone["fqdn"], target)
    r = server.get(zone["fqdn"], target)
    assert (r.headers["x-cache"], origin.count(target)) == ("HIT", 1)


STATIC_FILES = [
    ("style.css", "text/css"),
    ("app.js", "application/javascript; charset=utf-8"),
    ("app.mjs", "text/javascript"),
    ("logo.png", "image/png"),
    ("logo.svg", "image/svg+xml"),
    ("font.woff2", "font/woff2"),
    ("blob.png", "application/octet-stream"),
    ("page.html", "text/html"),
    ("no-extension", "text/html"),
    ("data.json", "application/json"),
]


@pytest.mark.parametrize(
    ("name", "content_type"), STATIC_FILES, ids=slugs(n for n, _ in STATIC_FILES)
)
def test_static_files_without_cache_headers_are_cached_on_the_zone_ttl(
    server: Server, origin: Origin, zone: Zone, path: str, name: str, content_type: str
) -> None:
    """The deception guard leaves real static files (and unrelated types) alone: the
    zone's `cache` TTL applies to them as the README (Zones) says."""
    target = path.rpartition("/")[0] + "/" + name
    origin.route(target, Reply(headers=[("Content-Type", content_type)], body=b"static"))
    server.get(zone["fqdn"], target)
    r = server.get(zone["fqdn"], target)
    assert (r.headers["x-cache"], r.content, origin.count(target)) == ("HIT", b"static", 1)


def test_the_origin_only_ever_saw_its_own_host(
    origin: Origin, server: Server, module_start: set[int]
) -> None:
    """Run last in this module: whatever the hostile requests above named, every request
    the origin received carried the zone's origin Host — the edge proxied nowhere else."""
    hosts = {s.headers.get("host") for s in all_seen(origin) if id(s) not in module_start}
    assert hosts <= {f"127.0.0.1:{origin.port}"}, hosts
    # And the edge still answers.
    assert httpx.get(server.edge_url + "/", headers={"Host": "nope.example"}).status_code == 404
