"""The client's address, as every access rule, the access log and the origin see it.

A connection's peer is the client, unless the peer is a trusted proxy (`--trusted-proxies`):
then the client is read from X-Forwarded-For, right to left, skipping the trusted proxies
that appended their own peer, as nginx's `real_ip_recursive on`. (With `--proxy-protocol`
the peer itself is what the PROXY header named: edge/proxy_protocol.py.)
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def networks(items: tuple[str, ...] | list[str]) -> tuple[Network, ...]:
    """Addresses and CIDRs as networks (an address is a /32 or /128). Raises ValueError."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def address_of(text: str) -> Address | None:
    """`text` as an address (an IPv4-mapped IPv6 one as IPv4); None when it is none."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address | None, nets: tuple[Network, ...]) -> bool:
    return address is not None and any(address in net for net in nets)


def _entry(item: str) -> Address | None:
    """One X-Forwarded-For element: an address, maybe `[v6]` or `v4:port` as some send."""
    item = item.strip()
    if item.startswith("["):
        item = item[1:].partition("]")[0]
    elif item.count(":") == 1:
        item = item.partition(":")[0]
    return address_of(item)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client of a request from `peer` carrying `forwarded_for` (X-Forwarded-For)."""
    if not forwarded_for or not within(address_of(peer), trusted):
        return peer
    client = peer
    for item in reversed(forwarded_for.split(",")):
        address = _entry(item)
        if address is None:  # garbage: the last address a trusted proxy vouched for
            return client
        client = str(address)
        if not within(address, trusted):
            return client
    return client  # every one trusted: the left-most
