"""The client's address from X-Forwarded-For of a trusted proxy (edge/client.py)."""

from __future__ import annotations

import pytest

from pullzone.edge.client import client_address, networks

TRUSTED = networks(["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"])


@pytest.mark.parametrize(
    ("peer", "xff", "client"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # an untrusted peer: its own address
        ("127.0.0.1", None, "127.0.0.1"),  # a trusted one without the field
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        # right to left, past the trusted proxies: a client's own forged left part is ignored
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.1", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6,198.51.100.1,10.9.9.9,2001:db8::7", "198.51.100.1"),
        ("10.0.0.2", "10.0.0.3, 10.0.0.4", "10.0.0.3"),  # all trusted: the left-most
        ("10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"),  # garbage: the last vouched for
        ("10.0.0.2", "garbage, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "[2001:db8:1::9]:443, 198.51.100.1:1234", "198.51.100.1"),
        ("10.0.0.2", "2a00:1450::1", "2a00:1450::1"),
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),  # a mapped peer is its IPv4
        ("", "198.51.100.1", ""),
    ],
)
def test_the_right_most_address_that_is_not_a_trusted_proxy(
    peer: str, xff: str | None, client: str
) -> None:
    assert client_address(peer, xff, TRUSTED) == client


def test_no_trusted_proxies_trusts_no_field() -> None:
    assert client_address("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


def test_networks_refuses_what_is_no_address() -> None:
    assert networks(["10.1.2.3/8"]) == networks(["10.0.0.0/8"])
    with pytest.raises(ValueError):
        networks(["10.0.0.0/33"])
