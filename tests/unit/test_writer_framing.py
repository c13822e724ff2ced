"""writer.body_framing and connection_field over HTTP/1.0, HTTP/1.1 and HTTP/2."""

from __future__ import annotations

from pullzone.edge.writer import Framing, body_framing, connection_field


def test_http2_is_never_chunked_nor_close_delimited() -> None:
    assert body_framing("GET", 200, None, "2") == Framing(b"", True, False, False)
    assert body_framing("GET", 200, 5, "2") == Framing(b"Content-Length: 5\r\n", True, False, False)
    assert body_framing("HEAD", 200, 5, "2").body is False
    assert body_framing("GET", 204, None, "2") == Framing(b"", False, False, False)


def test_http1_unknown_length_is_chunked_or_close_delimited() -> None:
    assert body_framing("GET", 200, None, "1.1").chunked
    assert body_framing("GET", 200, None, "1.0").close


def test_no_connection_field_over_http2() -> None:
    assert connection_field(True, "2") == b""
    assert connection_field(True, "1.1") == b"Connection: close\r\n"
