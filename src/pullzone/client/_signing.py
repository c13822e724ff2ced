"""Signed links (the zone's `securetoken` block, docs/zones.md "Blocks"), made from the
zone as the API answers it: its secret, policy and keyip, its hostname and scheme."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pullzone.client._results import Unexpected
from pullzone.edge.securetoken import sign
from pullzone.zones.blocks import SecureToken


def signed_url(answer: Mapping[str, Any], path: str, lifetime: int | None, ip: str | None) -> str:
    """The full signed URL of `path` on the zone of `answer` (a zone's GET answer), valid
    `lifetime` seconds from now (default: the block's `timeout`)."""
    zone = answer.get("zone")
    if not isinstance(zone, Mapping):
        raise Unexpected("no zone in the answer")
    block = zone.get("securetoken")
    fqdn = zone.get("fqdn")
    if not isinstance(block, Mapping) or not isinstance(fqdn, str):
        raise Unexpected("the zone has no securetoken block or fqdn")
    secret = block.get("list")
    if not isinstance(secret, str) or not secret:
        raise ValueError(f"zone {zone.get('id')} has no securetoken secret (list) to sign with")
    token = SecureToken(
        enabled=block.get("enabled") == "Y",
        policy=str(block.get("policy", "Q")),
        keyip=block.get("keyip") == "Y",
        secret=secret,
    )
    seconds = int(block.get("timeout", 3600)) if lifetime is None else lifetime
    if seconds <= 0:
        raise ValueError(f"expires must be a number of seconds above 0, not {seconds}")
    ssl = zone.get("ssl")
    scheme = "https" if isinstance(ssl, Mapping) and ssl.get("enabled") == "Y" else "http"
    return f"{scheme}://{fqdn}{sign(token, path, int(time.time()) + seconds, ip)}"
