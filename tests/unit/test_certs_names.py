"""certs.names: which hosts a certificate's names cover (RFC 6125 §6.4)."""

from __future__ import annotations

import pytest

from pullzone.certs.names import covers, matches


@pytest.mark.parametrize(
    ("name", "host", "expected"),
    [
        ("cdn.example.com", "cdn.example.com", True),
        ("CDN.Example.com", "cdn.example.COM.", True),
        ("cdn.example.com", "www.example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "A.EXAMPLE.COM", True),
        ("*.example.com", "example.com", False),  # exactly one label
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
        ("*.com", "example.com", False),  # no wildcard over a bare TLD
        ("f*.example.com", "foo.example.com", False),  # partial wildcards unsupported
        ("a.*.example.com", "a.b.example.com", False),  # leftmost label only
        ("*.*.example.com", "a.b.example.com", False),
        ("*.0.2.1", "192.0.2.1", False),  # never an IP literal
        ("example.com", "*.example.com", False),
        ("", "example.com", False),
        ("example.com", "", False),
    ],
)
def test_matches(name: str, host: str, expected: bool) -> None:
    assert matches(name, host) is expected


def test_covers_any_name() -> None:
    names = ("example.com", "*.example.com")
    assert covers(names, "example.com")
    assert covers(names, "www.example.com")
    assert not covers(names, "a.www.example.com")
    assert not covers((), "example.com")
