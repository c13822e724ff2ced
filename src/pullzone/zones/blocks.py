"""The zone's 5centscdn blocks besides `cache` and `ssl` (docs/zones.md, "Blocks"): what a
zone stores for each, in typed records, and how the API spells them.

Each record holds values already validated by the API (control/schemas.py). Lists are
tuples; the API answers them in 5centscdn's spelling (a comma-separated string, but for
geoblock's country list, which 5centscdn answers as an array). `active` in an answer says
whether the edge applies the block now.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar


def yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _joined(items: tuple[str, ...]) -> str:
    return ",".join(items)


@dataclass(frozen=True, slots=True)
class EdgeOptions:
    """The `edge` block: switches of the edge's behaviour."""

    compression: bool = False
    compressionlevel: int = 6
    disposition: bool = False
    stripcookie: bool = False
    xff: bool = False
    cors: bool = False
    webp: bool = False
    pseudostreaming: bool = False
    wp: bool = False
    lfo: bool = False
    prefresh: bool = False

    def to_api(self) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            answer[item.name] = yn(value) if isinstance(value, bool) else str(value)
        return answer


@dataclass(frozen=True, slots=True)
class SecureToken:
    """Signed URLs: `secret` is 5centscdn's `list`; `timeout` a link's lifetime (s)."""

    enabled: bool = False
    policy: str = "Q"  # Q: ?md5=…&expires=…, F: the same over the full path, D: /md5=…,expires=…/
    keyip: bool = False
    secret: str = ""
    timeout: int = 3600
    ips: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": yn(self.enabled),
            "policy": self.policy,
            "keyip": yn(self.keyip),
            "list": self.secret,
            "timeout": self.timeout,
            "session": "0",
            "ips": _joined(self.ips),
            "active": yn(self.enabled),
        }


@dataclass(frozen=True, slots=True)
class DomainLock:
    """Referer rules: `domains` (a domain matches its subdomains too)."""

    enabled: bool = False
    policy: str = "Y"  # Y: only these domains; N: all but these
    domains: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    noreferer: bool = False  # Y: a request without a Referer is refused

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": yn(self.enabled),
            "policy": self.policy,
            "list": _joined(self.domains),
            "ips": _joined(self.ips),
            "noreferer": yn(self.noreferer),
            "active": yn(self.enabled),
        }


@dataclass(frozen=True, slots=True)
class IpAccess:
    """Client address rules: `addresses` are addresses and CIDRs."""

    enabled: bool = False
    policy: str = "Y"  # Y: refuse these; N: allow only these
    addresses: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": yn(self.enabled),
            "policy": self.policy,
            "list": _joined(self.addresses),
            "ips": _joined(self.ips),
            "active": yn(self.enabled),
        }


@dataclass(frozen=True, slots=True)
class GeoBlock:
    """Country rules: ISO 3166 alpha-2 codes."""

    enabled: bool = False
    policy: str = "Y"  # Y: refuse these; N: allow only these
    countries: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": yn(self.enabled),
            "policy": self.policy,
            "list": list(self.countries),
            "ips": _joined(self.ips),
            "active": yn(self.enabled),
        }


@dataclass(frozen=True, slots=True)
class UserAgent:
    """User-Agent rules: `agents` are substrings."""

    enabled: bool = False
    policy: str = "Y"  # Y: refuse matching agents; N: allow only them
    agents: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    casesensitive: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": yn(self.enabled),
            "policy": self.policy,
            "list": _joined(self.agents),
            "ips": _joined(self.ips),
            "casesensitive": yn(self.casesensitive),
            "active": yn(self.enabled),
        }


@dataclass(frozen=True, slots=True)
class BwLimit:
    """Per-connection rate in kilobits per second, from the first byte (policy "0") or
    after `rateafter` kilobytes (policy "1")."""

    enabled: bool = False
    policy: str = "0"
    rate: int = 0
    rateafter: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": yn(self.enabled),
            "policy": self.policy,
            "rate": self.rate,
            "rateafter": self.rateafter,
        }


@dataclass(frozen=True, slots=True)
class OriginIp:
    """Connect to `ip` for the origin, sending `customhostheader` (or the origin's host)
    as Host and TLS SNI."""

    enabled: bool = False
    ip: str = ""
    customhostheader: str = ""

    def to_api(self) -> dict[str, Any]:
        return {
            "enabled": yn(self.enabled),
            "ip": self.ip,
            "customhostheader": self.customhostheader,
        }


@dataclass(frozen=True, slots=True)
class Shield:
    """Misses go to a shield node instead of the origin (docs/cluster.md)."""

    enabled: bool = False
    network: str = "0"

    def to_api(self) -> dict[str, Any]:
        return {"enabled": yn(self.enabled), "network": self.network}


Block = (
    EdgeOptions | SecureToken | DomainLock | IpAccess | GeoBlock | UserAgent | BwLimit
    | OriginIp | Shield
)  # fmt: skip

# The blocks by their 5centscdn name, in the order answers list them.
BLOCKS: dict[str, type[Block]] = {
    "edge": EdgeOptions,
    "securetoken": SecureToken,
    "domainlock": DomainLock,
    "geoblock": GeoBlock,
    "ipaccess": IpAccess,
    "useragent": UserAgent,
    "bwlimit": BwLimit,
    "originip": OriginIp,
    "shield": Shield,
}

B = TypeVar("B", bound=Block)


def block_from_record(cls: type[B], record: dict[str, Any] | None) -> B:
    """A block from its stored record (lists back to tuples); a zone stored before the
    block existed gets the block's defaults."""
    if not record:
        return cls()
    names = {item.name for item in fields(cls)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in names
    }
    return cls(**values)
