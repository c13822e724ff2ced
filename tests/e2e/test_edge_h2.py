"""HTTP/2 at the edge (ALPN h2, the zone's ssl.http2), through real clients: curl
--http2, h2load, httpx, and the h2 library for what clients rarely do on purpose
(stalling one stream)."""

from __future__ import annotations

import contextlib
import random
import re
import socket
import subprocess
import time
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httpx
import pytest
from origin import Origin, Reply
from purge_hammer import hammer_through_purges
from server import Server, samples, until
from tls_support import Tls, curl, https_zone, loopback_names, tls, tls_server, url

__all__ = ["loopback_names", "tls", "tls_server"]  # the fixtures this module uses
pytestmark = pytest.mark.usefixtures("loopback_names")

CACHEABLE = [("Cache-Control", "max-age=600")]


@pytest.fixture()
def zone(tls_server: Server, origin: Origin, tls: Tls) -> dict[str, Any]:
    return https_zone(tls_server, origin.url, tls, http2=True)


def test_curl_http2_miss_then_hit(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"h2 body"))
    first = curl(tls_server, tls, zone["fqdn"], path, "--http2")
    second = curl(tls_server, tls, zone["fqdn"], path, "--http2")
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    assert first.stdout.startswith("HTTP/2 200") and "x-cache: MISS" in first.stdout
    assert second.stdout.startswith("HTTP/2 200") and "x-cache: HIT" in second.stdout
    assert second.stdout.endswith("h2 body") and "age: " in second.stdout
    # No connection-specific fields over HTTP/2 (RFC 9113 §8.2.2).
    assert "connection:" not in second.stdout.lower()
    assert origin.count(path) == 1


def test_a_zone_without_http2_is_answered_over_http1(
    tls_server: Server, origin: Origin, tls: Tls, path: str
) -> None:
    zone = https_zone(tls_server, origin.url, tls)  # ssl.http2 off
    origin.route(path, Reply(headers=CACHEABLE, body=b"1.1"))
    done = curl(tls_server, tls, zone["fqdn"], path, "--http2")
    assert done.returncode == 0 and done.stdout.startswith("HTTP/1.1 200"), done.stdout


def test_h2load_all_2xx(
    tls_server: Server, origin: Origin, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"x" * 2048))
    done = subprocess.run(
        ["h2load", "-n", "2000", "-c", "8", "-m", "10",
         f"--connect-to=127.0.0.1:{tls_server.tls_port}", url(tls_server, zone["fqdn"], path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    print(done.stdout)
    assert re.search(r"requests: 2000 total, 2000 started, 2000 done, 2000 succeeded", done.stdout)
    assert re.search(r"status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx", done.stdout)
    assert origin.count(path) == 1
    key = 'pullzone_edge_protocol_requests_total{protocol="h2",scheme="https"}'
    metrics = until(lambda: samples(tls_server), lambda m: m.get(key, 0) >= 2000)
    assert metrics.get(key, 0) >= 2000


def test_range_and_conditional_requests_over_h2(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    body = bytes(range(256)) * 4
    origin.route(path, Reply(headers=[*CACHEABLE, ("ETag", '"e1"')], body=body))
    with tls.client(tls_server, http2=True) as client:
        target = url(tls_server, zone["fqdn"], path)
        assert client.get(target).content == body
        r = client.get(target, headers={"Range": "bytes=10-19"})
        assert r.http_version == "HTTP/2"
        assert (r.status_code, r.content, r.headers["content-range"]) == (
            206,
            body[10:20],
            "bytes 10-19/1024",
        )
        r = client.get(target, headers={"If-None-Match": '"e1"'})
        assert (r.status_code, r.content, r.headers["x-cache"]) == (304, b"", "HIT")
        r = client.head(target)
        assert (r.status_code, r.headers["content-length"], r.content) == (200, "1024", b"")
    assert origin.count(path) == 1


def test_a_body_of_unknown_length_ends_with_the_stream(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=[b"a" * 1000, b"b" * 70000], chunked=True))
    with tls.client(tls_server, http2=True) as client:
        for _ in range(2):  # the MISS streams as it comes, the HIT from the cache
            r = client.get(url(tls_server, zone["fqdn"], path))
            assert r.content == b"a" * 1000 + b"b" * 70000
            assert "transfer-encoding" not in r.headers


def test_concurrent_streams_missing_one_object_make_one_origin_request(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"once", delay=0.5))
    client = RawH2(tls_server, tls, zone["fqdn"], window=65535)
    try:
        streams = [client.get(path) for _ in range(40)]  # on one connection, at once
        client.until(lambda: all(client.ended(sid) for sid in streams))
        assert [client.body(sid) for sid in streams] == [b"once"] * 40
    finally:
        client.sock.close()
    assert origin.count(path) == 1


def test_the_origin_is_told_https_over_h2(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(body=b"p"))
    with tls.client(tls_server, http2=True) as client:
        r = client.post(url(tls_server, zone["fqdn"], path), content=b"a form")
        assert (r.status_code, r.http_version) == (200, "HTTP/2")
    [seen] = origin.seen[path]
    assert (seen.body, seen.headers["x-forwarded-proto"]) == (b"a form", "https")


def test_no_stream_serves_purged_content_after_the_answer(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    version = [1]
    origin.route(path, lambda _seen: Reply(headers=CACHEABLE, body=f"v{version[0]}".encode()))
    target = url(tls_server, zone["fqdn"], path)

    def purge(n: int) -> httpx.Response:
        version[0] = n
        return tls_server.purge(zone["id"], [path], delete=n % 2 == 0)

    checked, _ = hammer_through_purges(
        lambda: tls.client(tls_server, http2=True), target, purge, connections=4, purges=16
    )
    assert checked > 30


class RawH2:
    """An HTTP/2 client connection driven by hand (the h2 library)."""

    def __init__(
        self, server: Server, tls: Tls, host: str, window: int, *, checked: bool = True
    ) -> None:
        context = tls.context()
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", server.tls_port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname=host)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.host = host
        # checked=False: what it sends is not checked, to send what clients must not.
        config = h2.config.H2Configuration(
            validate_outbound_headers=checked, normalize_outbound_headers=checked
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
        self.conn.initiate_connection()
        self.flush()
        self.events: list[h2.events.Event] = []

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def get(self, path: str) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            sid,
            [(":method", "GET"), (":scheme", "https"), (":authority", self.host), (":path", path)],
            end_stream=True,
        )
        self.flush()
        return sid

    def until(self, done: Any, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, self.events
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"timed out: {self.events}") from None
            assert data, "connection closed"
            self.events += self.conn.receive_data(data)
            self.flush()

    def ended(self, sid: int) -> bool:
        return any(isinstance(e, h2.events.StreamEnded) and e.stream_id == sid for e in self.events)

    def status(self, sid: int) -> int:
        for e in self.events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                return int(dict(e.headers or [])[b":status"])
        raise AssertionError(f"no response on stream {sid}")

    def body(self, sid: int) -> bytes:
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
        )


def test_a_stalled_stream_never_blocks_the_others(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path + "/big", Reply(headers=CACHEABLE, body=b"B" * 1_000_000))
    origin.route(path + "/small", Reply(headers=CACHEABLE, body=b"small"))
    client = RawH2(tls_server, tls, zone["fqdn"], window=16384)
    try:
        # The big one's window is never opened again: it stalls after 16 KiB...
        big = client.get(path + "/big")
        client.until(lambda: len(client.body(big)) >= 16384)
        # ...while other streams on the same connection are answered whole.
        for _ in range(3):
            small = client.get(path + "/small")
            client.until(lambda sid=small: client.ended(sid))
            assert client.body(small) == b"small"
        assert not client.ended(big)
        assert client.conn.remote_settings.max_concurrent_streams == 100
    finally:
        client.sock.close()


def test_a_header_list_beyond_the_bound_is_431_and_the_connection_goes_on(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"after"))
    client = RawH2(tls_server, tls, zone["fqdn"], window=65535)
    try:
        client.until(
            lambda: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in client.events)
        )
        assert client.conn.remote_settings.max_header_list_size == 32 * 1024
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            sid,
            [
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", zone["fqdn"]),
                (":path", path),
                *((f"x-big-{n}", "v" * 4000) for n in range(10)),
            ],
            end_stream=True,
        )
        client.flush()
        client.until(lambda: client.ended(sid))
        assert client.status(sid) == 431
        # As over HTTP/1.1: the request is refused, not the connection.
        after = client.get(path)
        client.until(lambda: client.ended(after))
        assert (client.status(after), client.body(after)) == (200, b"after")
        assert origin.count(path) == 1
    finally:
        client.sock.close()


@pytest.mark.parametrize(
    "field",
    [(b"X-Upper", b"1"), (b"connection", b"close"), (b"x-bad", b"a\x00b"), (b"te", b"gzip")],
    ids=["upper-case-name", "connection-field", "nul-in-a-value", "te-not-trailers"],
)
def test_a_request_breaking_the_field_rules_is_reset_and_the_connection_goes_on(
    tls_server: Server,
    origin: Origin,
    tls: Tls,
    zone: dict[str, Any],
    path: str,
    field: tuple[bytes, bytes],
) -> None:
    """RFC 9113 §8.2.1 / §8.2.2: a malformed request is a stream error (RST_STREAM
    PROTOCOL_ERROR); it never reaches the origin and other streams go on."""
    origin.route(path, Reply(headers=CACHEABLE, body=b"fine"))
    client = RawH2(tls_server, tls, zone["fqdn"], window=65535, checked=False)
    try:
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            sid,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", zone["fqdn"].encode()),
                (b":path", path.encode()),
                field,
            ],
            end_stream=True,
        )
        client.flush()
        client.until(
            lambda: any(isinstance(e, h2.events.StreamReset) for e in client.events), timeout=3
        )
        (reset,) = [e for e in client.events if isinstance(e, h2.events.StreamReset)]
        assert (reset.stream_id, reset.error_code) == (sid, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        assert origin.count(path) == 0
        after = client.get(path)
        client.until(lambda: client.ended(after))
        assert (client.status(after), client.body(after)) == (200, b"fine")
    finally:
        client.sock.close()


def assert_served_on_a_new_connection(server: Server, tls: Tls, host: str, path: str) -> None:
    fresh = RawH2(server, tls, host, window=65535)
    try:
        sid = fresh.get(path)
        fresh.until(lambda: fresh.ended(sid))
        assert (fresh.status(sid), fresh.body(sid)) == (200, b"fine")
    finally:
        fresh.sock.close()


def test_a_rapid_reset_flood_ends_that_connection_and_not_the_edge(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    """CVE-2023-44487: streams opened and reset at once, thousands of them, each cost the
    edge a handler; nghttp2 bounds the rate of resets and ends such a connection."""
    origin.route(path, Reply(headers=CACHEABLE, body=b"fine"))
    client = RawH2(tls_server, tls, zone["fqdn"], window=65535)
    head = [(":method", "GET"), (":scheme", "https"), (":authority", zone["fqdn"])]
    ended = False
    try:
        for batch in range(40):
            for n in range(100):
                sid = client.conn.get_next_available_stream_id()
                target = f"{path}?n={batch * 100 + n}"
                client.conn.send_headers(sid, [*head, (":path", target)], end_stream=True)
                client.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            try:
                client.flush()
            except OSError:  # ssl.SSLError too: the edge has closed the connection
                ended = True
                break
        client.sock.settimeout(10)
        while not ended:
            try:
                data = client.sock.recv(65536)
            except TimeoutError:
                break  # the connection goes on: the flood was not stopped
            except OSError:
                data = b""  # reset by the edge
            events = client.conn.receive_data(data) if data else []
            ended = not data or any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    finally:
        client.sock.close()
    assert ended
    assert_served_on_a_new_connection(tls_server, tls, zone["fqdn"], path)


def _client_bytes(host: str, path: str) -> bytes:
    """What a busy HTTP/2 client sends: the preface, SETTINGS, requests with and without
    bodies, trailers, WINDOW_UPDATE, PING, PRIORITY, a reset."""
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    head = [(":scheme", "https"), (":authority", host)]
    for n in range(1, 12, 2):
        method = "POST" if n % 3 == 0 else "GET"
        conn.send_headers(n, [(":method", method), *head, (":path", f"{path}?{n}")])
        if method == "POST":
            conn.send_data(n, b"x" * 300)
            conn.send_headers(n, [("x-trailer", "t")], end_stream=True)
        else:
            conn.end_stream(n)
        conn.prioritize(n, weight=n * 10)
    conn.increment_flow_control_window(65535)
    conn.ping(b"12345678")
    conn.reset_stream(11)
    return conn.data_to_send()


def test_mangled_http2_never_takes_a_worker_down(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    """The HTTP/2 engine is C (libnghttp2) behind a binding of ours: 300 connections
    each send a busy client's bytes with a few bytes flipped, inserted or cut (seeded),
    then hang up. No worker dies, no callback fails, and HTTP/2 is served after."""
    origin.route(path, Reply(headers=CACHEABLE, body=b"fine"))
    workers = set(tls_server.worker_pids())
    clean = _client_bytes(zone["fqdn"], path)
    preface = 24  # the client preface itself is left whole (RFC 9113 §3.4)
    rng = random.Random(9113)
    context = tls.context()
    context.set_alpn_protocols(["h2"])
    for _ in range(300):
        data = bytearray(clean)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(preface, len(data))
            match rng.randrange(3):
                case 0:
                    data[at] ^= 1 << rng.randrange(8)
                case 1:
                    data[at:at] = rng.randbytes(rng.randint(1, 9))
                case _:
                    del data[at : at + rng.randint(1, 9)]
        raw = socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=10)
        # OSError: the edge may have closed it already.
        with (
            context.wrap_socket(raw, server_hostname=zone["fqdn"]) as sock,
            contextlib.suppress(OSError),
        ):
            sock.sendall(bytes(data))
    assert_served_on_a_new_connection(tls_server, tls, zone["fqdn"], path)
    assert set(tls_server.worker_pids()) == workers
    assert "callback failed" not in tls_server.output()
    assert "Traceback" not in tls_server.output()
