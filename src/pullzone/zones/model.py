"""The pull zone: the one domain object shared by the API, the event log and the edge."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pullzone.zones.durations import parse_duration

DEFAULT_CACHE = {
    "cache": "4h",
    "expiry": "",
    "querystring": "Y",
    "cachecontrol": "Y",
    "usestale": "Y",
    "revalidate": "Y",
}


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """The zone's `cache` block (README, Zones), kept in its 5centscdn spelling plus seconds."""

    cache: str = "4h"
    expiry: str = ""
    querystring: bool = True
    cachecontrol: bool = True
    usestale: bool = True
    revalidate: bool = True

    @property
    def cache_secs(self) -> int:
        """Edge TTL for responses without freshness of their own; 0 means heuristics only."""
        return parse_duration(self.cache)

    @property
    def expiry_secs(self) -> int:
        """max-age sent to clients; 0 means pass the origin's Cache-Control through."""
        return parse_duration(self.expiry)

    def to_api(self) -> dict[str, Any]:
        return {
            "cache": self.cache,
            "expiry": self.expiry,
            "querystring": _yn(self.querystring),
            "cachecontrol": _yn(self.cachecontrol),
            "usestale": _yn(self.usestale),
            "revalidate": _yn(self.revalidate),
            "cacheInSecs": self.cache_secs,
            "expiryInSecs": self.expiry_secs,
        }

    @classmethod
    def from_api(cls, block: dict[str, Any]) -> CachePolicy:
        """From an already validated API block (`Y`/`N` flags, duration strings)."""
        merged = {**DEFAULT_CACHE, **block}
        return cls(
            cache=str(merged["cache"]),
            expiry=str(merged["expiry"]),
            querystring=merged["querystring"] == "Y",
            cachecontrol=merged["cachecontrol"] == "Y",
            usestale=merged["usestale"] == "Y",
            revalidate=merged["revalidate"] == "Y",
        )


@dataclass(frozen=True, slots=True)
class SslPolicy:
    """The zone's `ssl` block: HTTPS at the edge (docs/zones.md)."""

    enabled: bool = False
    http2: bool = False  # ALPN offers h2 besides http/1.1
    redirect: bool = False  # plain-HTTP visitors are sent to https
    mode: str = "default"
    certid: int = 0  # the account certificate served; 0: none (ACME obtains one)
    warning: str = ""  # why HTTPS is not served as asked (e.g. ACME failing), set by pullzone

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": _yn(self.enabled),
            "http2": _yn(self.http2),
            "redirect": _yn(self.redirect),
            "mode": self.mode,
            "certid": self.certid,
            "warning": self.warning,
        }


@dataclass(frozen=True, slots=True)
class Zone:
    id: int
    name: str
    alias: str
    origin: str
    host_header: str = ""
    cnames: tuple[str, ...] = ()
    disabled: bool = False
    cache: CachePolicy = field(default_factory=CachePolicy)
    ssl: SslPolicy = field(default_factory=SslPolicy)
    created_at: str = ""
    updated_at: str = ""

    def fqdn(self, edge_domain: str) -> str:
        return f"{self.alias}.{edge_domain}".lower()

    def hostnames(self, edge_domain: str) -> list[str]:
        """Every Host (lower case, no port) this zone answers for."""
        return [self.fqdn(edge_domain), *(c.lower() for c in self.cnames)]

    def to_api(self, edge_domain: str) -> dict[str, Any]:
        """The ZONE object of the API, in 5centscdn field names."""
        return {
            "id": self.id,
            "type": "pull",
            "mode": "http",
            "alias": self.alias,
            "name": self.name,
            "origin": self.origin,
            "hostHeader": self.host_header,
            "cnames": ",".join(self.cnames),
            "cnamesArr": list(self.cnames),
            "fqdn": self.fqdn(edge_domain),
            "disabled": "1" if self.disabled else "0",
            "status": "Disabled" if self.disabled else "Enabled",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "cache": self.cache.to_api(),
            "ssl": self.ssl.to_api(),
        }

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict for storage and for the event log."""
        record = asdict(self)
        record["cnames"] = list(self.cnames)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Zone:
        data = dict(record)
        data["cnames"] = tuple(data.get("cnames", ()))
        data["cache"] = CachePolicy(**data.get("cache", {}))
        data["ssl"] = SslPolicy(**data.get("ssl", {}))  # zones stored before HTTPS: none
        return cls(**data)

    def with_changes(self, **changes: Any) -> Zone:
        return replace(self, **changes)
