"""RFC 3986: an authority's host and port (§3.2.2, §3.2.3), and percent-encoding
normalisation, one spelling per resource (§6.2.2)."""

from __future__ import annotations

import pytest

from pullzone.spec.uri import normalise, split_authority


@pytest.mark.parametrize(
    ("authority", "split"),
    [
        ("cdn.example.com", ("cdn.example.com", None)),
        ("cdn.example.com:8080", ("cdn.example.com", "8080")),
        ("10.0.0.1:80", ("10.0.0.1", "80")),
        ("cdn.example.com:", ("cdn.example.com", "")),  # §3.2.3: the port may be empty
        (":8080", ("", "8080")),
        ("", ("", None)),
        ("[::1]", ("[::1]", None)),  # §3.2.2: an IP literal keeps its brackets
        ("[::1]:8080", ("[::1]", "8080")),
        ("[2001:db8::1]:", ("[2001:db8::1]", "")),
        ("[v1.fe]:9", ("[v1.fe]", "9")),  # IPvFuture
        ("host:port", ("host", "port")),  # unchecked: the caller validates the port
        # An IPv6 address without brackets: a host, no port (its last group is not one).
        ("::1", ("::1", None)),
        ("2001:db8::1:8080", ("2001:db8::1:8080", None)),
        # Not host[:port]: whole, as a host no host check accepts.
        ("[::1]x", ("[::1]x", None)),
        ("[::1]x:80", ("[::1]x:80", None)),
        ("[::1", ("[::1", None)),
    ],
)
def test_split_authority(authority: str, split: tuple[str, str | None]) -> None:
    assert split_authority(authority) == split


@pytest.mark.parametrize(
    ("spelled", "normal"),
    [
        ("/b", "/b"),
        ("/%62", "/b"),
        ("/%7Euser/%2d%2E%5F", "/~user/-._"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/a%2fb", "/a%2Fb"),  # reserved: stays encoded (it is not a separator)
        ("/a%2Ab*", "/a%2Ab*"),
        ("/q?x=%2b&y=%41", "/q?x=%2B&y=A"),
        ("/100%", "/100%"),  # not a percent-encoding: left alone
        ("/%zz", "/%zz"),
        ("/é", "/%C3%A9"),
        ("/€ x", "/%E2%82%AC x"),
    ],
)
def test_one_spelling(spelled: str, normal: str) -> None:
    assert normalise(spelled) == normal


def test_a_target_read_as_latin_1_gets_back_the_bytes_sent() -> None:
    raw = "/café".encode().decode("latin-1")  # what the edge reads from raw UTF-8 bytes
    assert normalise(raw, "latin-1") == normalise("/caf%C3%A9") == "/caf%C3%A9"
