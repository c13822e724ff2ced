"""edge/tls.py: which names a certificate covers (RFC 6125 §6.4.3)."""

from __future__ import annotations

from pullzone.edge.tls import covers


def test_exact_names_and_one_label_wildcards() -> None:
    sans = ("www.example.com", "*.cdn.example.com")
    assert covers(sans, "www.example.com")
    assert covers(sans, "a.cdn.example.com")
    assert not covers(sans, "a.b.cdn.example.com")  # a wildcard is one label
    assert not covers(sans, "cdn.example.com")  # nor none
    assert not covers(sans, "example.com")
    assert not covers(sans, "com")
