"""The pull zone: the one domain object shared by the API, the event log and the edge."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from pullzone.zones.blocks import (
    BLOCKS,
    BwLimit,
    DomainLock,
    EdgeOptions,
    GeoBlock,
    IpAccess,
    OriginIp,
    SecureToken,
    Shield,
    UserAgent,
    block_from_record,
    yn,
)
from pullzone.zones.durations import parse_duration

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"

DEFAULT_CACHE = {
    "cache": "4h",
    "expiry": "",
    "querystring": "Y",
    "cachecontrol": "Y",
    "usestale": "Y",
    "revalidate": "Y",
}


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
            "querystring": yn(self.querystring),
            "cachecontrol": yn(self.cachecontrol),
            "usestale": yn(self.usestale),
            "revalidate": yn(self.revalidate),
            "cacheInSecs": self.cache_secs,
            "cacheInMins": self.cache_secs // 60,
            "expiryInSecs": self.expiry_secs,
            "expiryInMins": self.expiry_secs // 60,
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
            "enabled": yn(self.enabled),
            "http2": yn(self.http2),
            "redirect": yn(self.redirect),
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
    edge: EdgeOptions = field(default_factory=EdgeOptions)
    securetoken: SecureToken = field(default_factory=SecureToken)
    domainlock: DomainLock = field(default_factory=DomainLock)
    geoblock: GeoBlock = field(default_factory=GeoBlock)
    ipaccess: IpAccess = field(default_factory=IpAccess)
    useragent: UserAgent = field(default_factory=UserAgent)
    bwlimit: BwLimit = field(default_factory=BwLimit)
    originip: OriginIp = field(default_factory=OriginIp)
    shield: Shield = field(default_factory=Shield)
    backup: str = ""  # a second origin URL; "": none
    created_at: str = ""
    updated_at: str = ""

    def fqdn(self, edge_domain: str) -> str:
        return f"{self.alias}.{edge_domain}".lower()

    def hostnames(self, edge_domain: str) -> list[str]:
        """Every Host (lower case, no port) this zone answers for."""
        return [self.fqdn(edge_domain), *(c.lower() for c in self.cnames)]

    @property
    def origin_host(self) -> str:
        """The origin URL's host (with its port when it has one), sent as Host by default."""
        return urlsplit(self.origin).netloc.lower()

    def hashid(self) -> str:
        """5centscdn's `hashid`: 12 base-36 characters, stable for the zone's life and the
        same on every node (made of what the event log replicates)."""
        digest = hashlib.sha256(f"{self.id}:{self.created_at}".encode()).digest()
        number = int.from_bytes(digest[:8], "big")
        chars = []
        for _ in range(12):
            number, digit = divmod(number, 36)
            chars.append(_BASE36[digit])
        return "".join(chars)

    def to_api(self, edge_domain: str) -> dict[str, Any]:
        """The ZONE object of the API, in 5centscdn field names."""
        answer: dict[str, Any] = {
            "id": self.id,
            "serviceid": service_id(edge_domain),
            "hashid": self.hashid(),
            "type": "pull",
            "mode": "http",
            "optimize": "http",
            "alias": self.alias,
            "name": self.name,
            "origin": self.origin,
            "backup": self.backup,
            "hostHeader": self.host_header or self.origin_host,
            "cnames": ",".join(self.cnames),
            "cnamesArr": list(self.cnames),
            "cnamesArrFqdn": self.hostnames(edge_domain),
            "fqdn": self.fqdn(edge_domain),
            "disabled": "1" if self.disabled else "0",
            "status": "Disabled" if self.disabled else "Enabled",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "cache": self.cache.to_api(),
            "ssl": self.ssl.to_api(),
        }
        for name in BLOCKS:
            answer[name] = getattr(self, name).to_api()
        return answer

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict for storage and for the event log."""
        record: dict[str, Any] = _json_ready(asdict(self))
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Zone:
        data = dict(record)
        data["cnames"] = tuple(data.get("cnames", ()))
        data["cache"] = CachePolicy(**data.get("cache", {}))
        data["ssl"] = SslPolicy(**data.get("ssl", {}))  # zones stored before HTTPS: none
        for name, block in BLOCKS.items():
            data[name] = block_from_record(block, data.get(name))  # older zones: defaults
        return cls(**data)

    def with_changes(self, **changes: Any) -> Zone:
        return replace(self, **changes)


def service_id(edge_domain: str) -> int:
    """5centscdn's `serviceid`: one number per installation, the same on every node of a
    cluster (they share the edge domain), derived rather than stored."""
    return int.from_bytes(hashlib.sha256(edge_domain.lower().encode()).digest()[:3], "big")


def _json_ready(value: Any) -> Any:
    """Tuples as lists, all the way down: what a JSON round trip gives back."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_json_ready(item) for item in value]
    return value
