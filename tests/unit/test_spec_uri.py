"""RFC 3986 §6.2.2 percent-encoding normalisation: one spelling per resource."""

from __future__ import annotations

import pytest

from pullzone.spec.uri import normalise


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
