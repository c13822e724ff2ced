"""What the API accepts for the zone's blocks (docs/zones.md, "Blocks"), in 5centscdn's
field names: each block's fields validated, with a message naming the field, and merged
field-wise into the zone's stored block (zones/blocks.py).

Decisions where 5centscdn's reference is silent:

- Lists (`list`, `ips`) are a comma-separated string (5centscdn's form) or an array (its
  geoblock form, and what PHP forms send as `list[]=`); spaces around items are dropped,
  repeats removed, at most MAX_ITEMS items.
- `ips` (exempt clients) and ipaccess' `list` hold IPv4/IPv6 addresses or CIDRs, kept in
  canonical form (`10.0.0.0/8`, `2001:db8::/32`).
- domainlock's `list` holds host names; `*.example.com` is read as `example.com`, which
  matches its subdomains anyway.
- geoblock's `list` holds ISO 3166-1 alpha-2 codes, in any case, answered upper case.
- `active` is read-only (whether the edge applies the block): accepted when it says what
  the zone's answer says, a 400 naming it otherwise. ipaccess' `mode: "save"`, which
  5centscdn's own example sends, is accepted and ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import pycountry
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from pullzone.control.errors import BadRequest
from pullzone.control.schemas import Flag, Strict, check_host_header, is_hostname, short
from pullzone.zones.blocks import Block

MAX_ITEMS = 1000
MAX_SECRET = 64
MAX_AGENT = 256
MIN_TIMEOUT, MAX_TIMEOUT = 5, 25_200
MAX_RATE = 100_000_000  # kbit/s: 100 Gbit/s, more than any one connection

B = TypeVar("B", bound=Block)

# --- lists -----------------------------------------------------------------------------


def _items(value: object, check: Callable[[str], str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raw = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        raw = value
    else:
        raise ValueError('must be a comma-separated string ("a,b") or an array of strings')
    items = [item.strip() for item in raw if item.strip()]
    if len(items) > MAX_ITEMS:
        raise ValueError(f"at most {MAX_ITEMS} items, not {len(items)}")
    return tuple(dict.fromkeys(check(item) for item in items))


def _network(text: str) -> str:
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(
            f"{short(text)} is not an IP address or CIDR (e.g. 203.0.113.7, 203.0.113.0/24, "
            "2001:db8::/32)"
        ) from None


def _domain(text: str) -> str:
    name = text.lower().removeprefix("*.").removesuffix(".")
    if "://" in name or "/" in name:
        raise ValueError(f"{short(text)}: give the domain only, such as example.com")
    if not is_hostname(name, loose=True):
        raise ValueError(f"{short(text)} is not a domain name such as example.com")
    return name


def _country(text: str) -> str:
    code = text.upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{short(text)} is not an ISO 3166 country code such as US or DE")
    return code


def _agent(text: str) -> str:
    if len(text) > MAX_AGENT:
        raise ValueError(f"a user agent substring is at most {MAX_AGENT} characters")
    if not text.isprintable():
        raise ValueError(f"{short(text)} holds control characters")
    return text


def _list_schema(example: str) -> Any:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "maxItems": MAX_ITEMS},
            ],
            "examples": [example],
        }
    )


Networks = Annotated[
    tuple[str, ...],
    BeforeValidator(lambda value: _items(value, _network)),
    _list_schema("203.0.113.0/24,2001:db8::1"),
]
Domains = Annotated[
    tuple[str, ...],
    BeforeValidator(lambda value: _items(value, _domain)),
    _list_schema("example.com,example.org"),
]
Countries = Annotated[
    tuple[str, ...],
    BeforeValidator(lambda value: _items(value, _country)),
    _list_schema("US,GB"),
]
Agents = Annotated[
    tuple[str, ...],
    BeforeValidator(lambda value: _items(value, _agent)),
    _list_schema("curl,python-requests"),
]

# --- scalars ---------------------------------------------------------------------------


def _letter(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _number(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 12:
        return int(value.strip())
    return value


def _level(value: object) -> object:
    number = _number(value)
    if isinstance(number, int) and not 1 <= number <= 9:
        raise ValueError(f"is a compression level from 1 to 9, not {number}")
    return number


def _session(value: object) -> object:
    if str(value).strip() != "0":
        raise ValueError("sessions are not supported: send 0 (each link carries its expiry)")
    return "0"


def _secret(value: str) -> str:
    if len(value) > MAX_SECRET:
        raise ValueError(f"the secret is at most {MAX_SECRET} characters, not {len(value)}")
    if not value.isprintable():
        raise ValueError("the secret must not hold control characters")
    return value


def _ip(value: str) -> str:
    text = value.strip()
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(text.removeprefix("[").removesuffix("]")))
    except ValueError:
        raise ValueError(f"{short(value)} is not an IP address such as 203.0.113.7") from None


PolicyYN = Annotated[Literal["Y", "N"] | None, BeforeValidator(_letter)]
Number = Annotated[int, BeforeValidator(_number)]
Active = Annotated[
    Literal["Y", "N"] | None,
    BeforeValidator(_letter),
    Field(description="Read-only: whether the edge applies the block."),
    WithJsonSchema({"type": "string", "enum": ["Y", "N"], "readOnly": True}),
]


class BlockIn(Strict):
    """A block's fields; those left out keep their value. `RECORD` maps an API name to the
    stored record's where they differ (`list` is a secret in one block, countries in
    another)."""

    NAME: ClassVar[str] = ""
    RECORD: ClassVar[dict[str, str]] = {}
    IGNORED: ClassVar[frozenset[str]] = frozenset({"active", "mode", "session"})

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        """A block's own route takes its fields at the top level or as `{NAME: {…}}`."""
        if isinstance(data, dict) and len(data) == 1 and isinstance(data.get(cls.NAME), dict):
            return data[cls.NAME]
        return data

    def apply_to(self, block: B, name: str) -> B:
        """`block` with the fields given here changed; a changed `active` is a 400."""
        active = getattr(self, "active", None)
        current = block.to_api()
        if active is not None and "active" in current and active != current["active"]:
            raise BadRequest(
                f"{name}.active is read-only (whether the edge applies {name}): "
                f"leave it out or send it unchanged; switch the block with {name}.enabled"
            )
        changes: dict[str, Any] = {}
        for field in self.model_fields_set - self.IGNORED:
            value = getattr(self, field)
            if value is None:
                continue  # "" for a flag: leave it as it is
            target = self.RECORD.get(field, field)
            if isinstance(getattr(block, target), bool):
                value = value == "Y"
            changes[target] = value
        return replace(block, **changes)


class EdgeIn(BlockIn):
    NAME: ClassVar[str] = "edge"
    compression: Flag = Field(None, description="Y: compress compressible responses.")
    compressionlevel: Annotated[int, BeforeValidator(_level)] | None = Field(
        None, description="1 (fastest) to 9 (smallest)."
    )
    disposition: Flag = Field(None, description="Y: add Content-Disposition: attachment.")
    stripcookie: Flag = Field(None, description="Y: remove Set-Cookie from origin responses.")
    xff: Flag = Field(None, description="Y: send the client's address in X-Forwarded-For.")
    cors: Flag = Field(None, description="Y: Access-Control-Allow-Origin: * and preflights.")
    webp: Flag = Field(None, description="5centscdn's image conversion: no meaning here; N.")
    pseudostreaming: Flag = Field(None, description="5centscdn's ?start=: no meaning here; N.")
    wp: Flag = Field(None, description="5centscdn's WordPress mode: no meaning here; N.")
    lfo: Flag = Field(None, description="Y: cache large objects in slices.")
    prefresh: Flag = Field(None, description="Y: refresh popular objects before they expire.")


class SecureTokenIn(BlockIn):
    NAME: ClassVar[str] = "securetoken"
    RECORD: ClassVar[dict[str, str]] = {"items": "secret"}

    enabled: Flag = Field(None, description="Y: every request needs a signed URL.")
    policy: Annotated[Literal["Q", "F", "D"] | None, BeforeValidator(_letter)] = Field(
        None, description="Q: ?md5=…&expires=…; F: the same, full path; D: /md5=…,expires=…/."
    )
    keyip: Flag = Field(None, description="Y: a link is bound to the client's address.")
    items: Annotated[str, AfterValidator(_secret)] | None = Field(
        None, alias="list", description=f"The secret (at most {MAX_SECRET} characters)."
    )
    timeout: Annotated[int, BeforeValidator(_number), Field(ge=MIN_TIMEOUT, le=MAX_TIMEOUT)] | (
        None
    ) = Field(None, description="A link's lifetime in seconds (5 to 25,200).")
    session: Annotated[str, BeforeValidator(_session)] | None = Field(
        None, description="Must be 0: sessions are not supported."
    )
    ips: Networks | None = Field(None, description="Clients exempt from the check.")
    active: Active = None


class DomainLockIn(BlockIn):
    NAME: ClassVar[str] = "domainlock"
    RECORD: ClassVar[dict[str, str]] = {"items": "domains"}

    enabled: Flag = Field(None, description="Y: check the Referer.")
    policy: PolicyYN = Field(None, description="Y: only these domains; N: all but these.")
    items: Domains | None = Field(None, alias="list", description="Domains (and subdomains).")
    ips: Networks | None = Field(None, description="Clients exempt from the check.")
    noreferer: Flag = Field(None, description="Y: refuse requests without a Referer.")
    active: Active = None


class IpAccessIn(BlockIn):
    NAME: ClassVar[str] = "ipaccess"
    RECORD: ClassVar[dict[str, str]] = {"items": "addresses"}

    enabled: Flag = Field(None, description="Y: check the client's address.")
    policy: PolicyYN = Field(None, description="Y: refuse these; N: allow only these.")
    items: Networks | None = Field(None, alias="list", description="Addresses and CIDRs.")
    ips: Networks | None = Field(None, description="Clients exempt from the check.")
    mode: Literal["save"] | None = Field(None, description='5centscdn\'s "save": ignored.')
    active: Active = None


class GeoBlockIn(BlockIn):
    NAME: ClassVar[str] = "geoblock"
    RECORD: ClassVar[dict[str, str]] = {"items": "countries"}

    enabled: Flag = Field(None, description="Y: check the client's country (--geoip-db).")
    policy: PolicyYN = Field(None, description="Y: refuse these; N: allow only these.")
    items: Countries | None = Field(None, alias="list", description="ISO 3166 alpha-2 codes.")
    ips: Networks | None = Field(None, description="Clients exempt from the check.")
    active: Active = None


class UserAgentIn(BlockIn):
    NAME: ClassVar[str] = "useragent"
    RECORD: ClassVar[dict[str, str]] = {"items": "agents"}

    enabled: Flag = Field(None, description="Y: check the User-Agent.")
    policy: PolicyYN = Field(None, description="Y: refuse matching agents; N: allow only them.")
    items: Agents | None = Field(None, alias="list", description="Substrings of User-Agent.")
    ips: Networks | None = Field(None, description="Clients exempt from the check.")
    casesensitive: Flag = Field(None, description="Y: match case-sensitively.")
    active: Active = None


class BwLimitIn(BlockIn):
    NAME: ClassVar[str] = "bwlimit"
    enabled: Flag = Field(None, description="Y: limit each connection's rate.")
    policy: Annotated[Literal["0", "1"] | None, BeforeValidator(lambda v: str(v).strip())] = Field(
        None, description="0: from the first byte; 1: after `rateafter` KB."
    )
    rate: Annotated[int, BeforeValidator(_number), Field(ge=0, le=MAX_RATE)] | None = Field(
        None, description="Kilobits per second."
    )
    rateafter: Annotated[int, BeforeValidator(_number), Field(ge=0, le=MAX_RATE)] | None = Field(
        None, description="Kilobytes sent at full speed first (policy 1)."
    )


class OriginIpIn(BlockIn):
    NAME: ClassVar[str] = "originip"
    IGNORED: ClassVar[frozenset[str]] = BlockIn.IGNORED | {"dnscheck"}
    enabled: Flag = Field(None, description="Y: connect to `ip` for the origin.")
    ip: Annotated[str, AfterValidator(_ip)] | None = Field(None, description="The address.")
    customhostheader: Annotated[str, AfterValidator(check_host_header)] | None = Field(
        None, description="Host and TLS SNI sent; empty: the origin's host."
    )
    dnscheck: Flag = Field(
        None, description="5centscdn's DNS check of the address: accepted, not stored."
    )


class ShieldIn(BlockIn):
    NAME: ClassVar[str] = "shield"
    enabled: Flag = Field(None, description="Y: misses go through a shield node.")
    network: Annotated[str, BeforeValidator(lambda v: str(v).strip())] | None = Field(
        None, description="5centscdn's shield network; stored and answered.", max_length=10
    )


BLOCK_INPUTS: dict[str, type[BlockIn]] = {
    "edge": EdgeIn,
    "securetoken": SecureTokenIn,
    "domainlock": DomainLockIn,
    "geoblock": GeoBlockIn,
    "ipaccess": IpAccessIn,
    "useragent": UserAgentIn,
    "bwlimit": BwLimitIn,
    "originip": OriginIpIn,
    "shield": ShieldIn,
}
