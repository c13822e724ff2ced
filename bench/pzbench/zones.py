"""A typical zone for the benches that need many (bench/stats_size.py, bench/snapshot_size.py):
two cnames, its own cache policy, and a few blocks switched on (signed URLs, an IP list, a
domain lock, compression and CORS), as the API's body of `POST /v2/zones/http/pull/new`."""

from __future__ import annotations

import hashlib
from typing import Any


def zone_body(i: int, origin: str) -> dict[str, Any]:
    """Zone `i`'s body; its secret is random-looking (as a real one: it does not compress)."""
    secret = hashlib.sha256(f"zone {i}".encode()).hexdigest()[:32]
    return {
        "name": f"Customer site {i}",
        "alias": f"site-{i}",
        "origin": origin,
        "cnames": f"cdn{i}.example.com,static{i}.example.net",
        "cache": {
            "cache": "1d",
            "expiry": "",
            "querystring": "N",
            "cachecontrol": "Y",
            "usestale": "Y",
            "revalidate": "Y",
        },
        "edge": {"compression": "Y", "cors": "Y"},
        "securetoken": {"enabled": "Y", "policy": "Q", "list": secret},
        "ipaccess": {"enabled": "Y", "policy": "Y", "list": "203.0.113.0/24,198.51.100.7"},
        "domainlock": {"enabled": "Y", "policy": "Y", "list": f"example{i}.com,www.example{i}.com"},
    }
