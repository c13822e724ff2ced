"""What the management API accepts and answers (README, Zones), as pydantic models.

Request models forbid unknown fields; every rule lives in a validator whose message says
what is wrong and how to fix it, and `errors.validation_message` turns pydantic's errors
into the one-line `message` of the answer.

Decisions where the contract is silent:

- `disabled` takes "0"/"1" (5centscdn's form), and also 0/1 and true/false; the answer
  always says "0"/"1".
- `querystring`, `cachecontrol`, `usestale`, `revalidate` take "Y"/"N" in any case.
- Durations (`cache`, `expiry`) are strings in 5centscdn's forms (`30m`, `4h`, `1d`, `1M`,
  a bare number of seconds; `""` or `"0"` for none).
- `cacheInSecs`, `cacheInMins`, `expiryInSecs`, `expiryInMins` are derived from the
  durations. 5centscdn's own "Update Cache" example sends them, so they are accepted when
  they agree with the resulting durations and refused with a 400 when they do not; they
  never set anything.
- `cnames` is a comma-separated string (whitespace around names ignored, empty entries
  dropped, lower-cased, at most MAX_CNAMES); each a DNS host name or an IP literal. IPv6
  literals are kept in their Host-header form, `[2001:db8::1]`, which is how the edge
  routes them.
- `origin`: an absolute http(s) URL with a host; a path is a prefix for every request;
  no user info, query or fragment.
- 5centscdn blocks pullzone does not implement (UNSUPPORTED_BLOCKS) are accepted when
  switched off and refused with a 400 naming them when on.
- `_METHOD: "PUT"`, which 5centscdn's create examples carry, is accepted (and ignored) on
  create.
- The `ssl` block (`enabled`, `http2`, `redirect`: "Y"/"N", any case, or booleans; ""
  leaves a flag as it is, as 5centscdn's examples send it) merges field-wise like `cache`.
  `mode` is "default" or 5centscdn's "S" (SNI: the only way pullzone serves HTTPS).
  `certid` 0 or null: no account certificate. `warning` is pullzone's to set: accepted
  when unchanged (5centscdn's `false` counts as none), a 400 naming it otherwise. Whether
  `certid` names a certificate is checked by the route, which sees control.db.
- `POST …/{id}/cache` takes the cache block's fields at the top level
  (`{"cache": "1h", "querystring": "N"}`) and also the block wrapped as `{"cache": {…}}`.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import replace
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from pullzone.control.errors import BadRequest
from pullzone.permissions import PERMISSIONS, normalized
from pullzone.permissions import Permission as PermissionName
from pullzone.spec.uri import split_authority
from pullzone.zones.durations import parse_duration
from pullzone.zones.model import CachePolicy, SslPolicy

MAX_CNAMES = 100
MAX_NAME = 255
MAX_ORIGIN = 2048
MAX_ALIAS = 63
MAX_ZONE_ID = 2**63 - 1  # SQLite's INTEGER
MAX_KEY_ZONES = 10_000  # zones one API key may be limited to

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LOOSE_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")

# The schema's (ECMA 262) view of the rules below, for clients and spec-driven tests.
_NO_CC = r"\u0000-\u001f\u007f-\u009f"
_NAME_PATTERN = rf"^[^{_NO_CC}]*[^\s{_NO_CC}][^{_NO_CC}]*$"
_ORIGIN_PATTERN = r"^[hH][tT][tT][pP][sS]?://[^\s/?#@]+(/[^\s?#]*)?$"


def short(value: object, limit: int = 60) -> str:
    """A value for an error message, never the whole of a huge input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def on(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in ("y", "yes", "1", "true", "on")


# --- host names ------------------------------------------------------------------------


def ip_literal(text: str) -> str | None:
    """The canonical Host form of an IP literal (`10.0.0.1`, `[2001:db8::1]`), else None."""
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if "%" in inner:
        return None  # a zone id (fe80::1%eth0) means nothing off this machine
    try:
        address = ipaddress.ip_address(inner)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return f"[{address.compressed}]"
    if inner != text:
        return None  # [10.0.0.1] is not a thing
    return str(address)


def is_hostname(text: str, *, loose: bool = False) -> bool:
    """A DNS host name (RFC 1123): dot-separated labels of letters, digits and hyphens.

    `loose` also allows `_` (container and intranet names that origins often have).
    """
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    pattern = _LOOSE_LABEL if loose else _LABEL
    if not all(pattern.match(label) for label in labels):
        return False
    return not labels[-1].isdigit()  # RFC 3696 §2: a TLD is never all digits


def check_host(text: str, what: str) -> str:
    """A cname: host name or IP literal, lower-cased; raises ValueError naming it."""
    host = text.strip().lower()
    literal = ip_literal(host)
    if literal is not None:
        return literal
    if host.startswith("*"):
        raise ValueError(f"{what} {short(text)}: wildcards are not supported; list each name")
    if not is_hostname(host):
        raise ValueError(
            f"{what} {short(text)} is not a valid host name or IP address "
            "(letters, digits, hyphens and dots, e.g. cdn.example.com)"
        )
    return host.removesuffix(".")


# --- field types -----------------------------------------------------------------------


def _check_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ValueError("must not contain control characters")
    return name


def _check_alias(value: str) -> str:
    alias = value.strip().lower()
    if not _LABEL.match(alias):
        raise ValueError(
            f"{short(value)} is not a valid alias: use 1 to {MAX_ALIAS} letters, digits and "
            "hyphens, not starting or ending with a hyphen (it becomes ALIAS.EDGE_DOMAIN)"
        )
    return alias


def check_origin(value: str) -> str:
    origin = value.strip()
    hint = "give an absolute http or https URL such as https://origin.example.com"
    if not origin:
        raise ValueError(f"must not be empty: {hint}")
    if len(origin) > MAX_ORIGIN:
        raise ValueError(f"must be at most {MAX_ORIGIN} characters")
    if not origin.isascii() or any(c.isspace() or not c.isprintable() for c in origin):
        raise ValueError(
            "must be plain ASCII without spaces: percent-encode the path and use the "
            "xn-- form of an international host name"
        )
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        raise ValueError(f"{short(origin)} is not a valid URL (check the port): {hint}") from None
    if parts.scheme.lower() not in ("http", "https"):
        if not parts.scheme:
            raise ValueError(f"{short(origin)} is not an absolute URL: {hint}")
        raise ValueError(f"scheme {short(parts.scheme)} is not supported: {hint}")
    if "@" in parts.netloc:
        raise ValueError("must not carry user info (user:password@); pullzone sends none")
    if "#" in origin:
        raise ValueError("must not have a #fragment")
    if "?" in origin:
        raise ValueError("must not have a ?query: the origin is a prefix for request paths")
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{short(origin)} has no host: {hint}")
    if ip_literal(host) is None and not is_hostname(host, loose=True):
        raise ValueError(f"host {short(host)} is not a valid host name or IP address")
    if port == 0 or parts.netloc.endswith(":"):
        raise ValueError("the port must be a number from 1 to 65535")
    return origin


def check_host_header(value: str) -> str:
    text = value.strip().lower()
    if not text:
        return ""
    host, port = split_authority(text)
    if port is not None and not (_PORT.match(port) and 0 < int(port) < 65536):
        raise ValueError(f"{short(value)}: the port must be a number from 1 to 65535")
    literal = ip_literal(host)
    if literal is None and not is_hostname(host, loose=True):
        raise ValueError(
            f"{short(value)} is not a host name, IP address or HOST:PORT "
            "(leave it empty to send the origin's host)"
        )
    return (literal or host) + (f":{port}" if port is not None else "")


def _check_cnames(value: object) -> tuple[str, ...]:
    if not isinstance(value, str):
        raise ValueError('must be a comma-separated string, e.g. "cdn.example.com,10.0.0.1"')
    items = [item for item in value.split(",") if item.strip()]
    if len(items) > MAX_CNAMES:
        raise ValueError(f"at most {MAX_CNAMES} cnames per zone, not {len(items)}")
    names: dict[str, None] = {}
    for item in items:
        host = check_host(item, "cname")
        if host in names:
            raise ValueError(f"cname {host} is listed twice")
        names[host] = None
    return tuple(names)


def _check_duration(value: str) -> str:
    text = value.strip()
    if len(text) > 10:
        raise ValueError(f"{short(value)} is not a duration: use for example 30m, 4h, 1d or 1M")
    try:
        parse_duration(text)
    except ValueError:
        raise ValueError(
            f"{short(value)} is not a duration: use a number with a unit s, m, h, d, w, M or y "
            '(for example 30m, 4h, 1d, 1M), or "" for none'
        ) from None
    return text


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _zero_one(value: object) -> object:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) and value in (0, 1):
        return str(value)
    return value


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds, not true/false")
    return value


Name = Annotated[
    str,
    AfterValidator(_check_name),
    Field(
        description="A label for the zone (not empty, no control characters).",
        examples=["my site"],
        json_schema_extra={"maxLength": MAX_NAME, "pattern": _NAME_PATTERN},
    ),
]
Alias = Annotated[
    str,
    AfterValidator(_check_alias),
    Field(
        description="The zone's DNS label: its fqdn is ALIAS.EDGE_DOMAIN. Default: a slug of "
        "the name, made unique with -2, -3, …; an alias that is taken is refused.",
        examples=["my-site"],
        json_schema_extra={"pattern": r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"},
    ),
]
Origin = Annotated[
    str,
    AfterValidator(check_origin),
    Field(
        description="Absolute http or https URL; a path is a prefix for every request.",
        examples=["https://origin.example.com"],
        json_schema_extra={"maxLength": MAX_ORIGIN, "pattern": _ORIGIN_PATTERN},
    ),
]
HostHeader = Annotated[
    str,
    AfterValidator(check_host_header),
    Field(
        description="Host header sent to the origin; empty: the origin URL's host.",
        examples=["www.example.com"],
        json_schema_extra={"maxLength": 260},
    ),
]
Cnames = Annotated[
    tuple[str, ...],
    BeforeValidator(_check_cnames),
    WithJsonSchema(
        {
            "type": "string",
            "description": "Comma-separated host names or IP literals the zone also "
            'answers for; "" for none.',
            "examples": ["cdn.example.com,static.example.com"],
        }
    ),
]
Disabled = Annotated[
    Literal["0", "1"],
    BeforeValidator(_zero_one),
    Field(
        description='"1" answers 403 for every request to the zone; 0/1 and true/false '
        "are accepted too."
    ),
]
YesNo = Annotated[Literal["Y", "N"], BeforeValidator(_upper)]
Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(examples=["4h"], json_schema_extra={"pattern": r"^([0-9]{1,9}[smhdwMy]?)?$"}),
]
# readOnly (OpenAPI 3.1 / JSON Schema): answers carry them; a request may send them back
# (5centscdn's "Update Cache" example does) only with the values they already have, which
# the schema cannot express, so clients and generators are told to leave them out.
DerivedSeconds = Annotated[
    int, Field(ge=0, json_schema_extra={"readOnly": True}), BeforeValidator(_no_bool)
]


class RequestSchema(GenerateJsonSchema):
    """JSON Schema of request bodies: `X | None = None` fields are documented as X, since
    `None` only stands for "left out" (an explicit null is refused by `Strict`)."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


class Strict(BaseModel):
    """Unknown fields are refused; `X | None = None` fields may be left out, not sent null."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def nullable(cls) -> frozenset[str]:
        """Fields that may be sent as null (read-only ones that answers carry as null)."""
        return frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fields = cls.model_fields
            names = set(fields) | {f.alias for f in fields.values() if f.alias}
            for key, value in data.items():
                if value is None and key in names and key not in cls.nullable():
                    raise ValueError(
                        f'{key}: null is not a value here; leave the field out, or send "" '
                        "to clear a text field"
                    )
        return data


# --- the cache block -------------------------------------------------------------------


class CacheIn(Strict):
    """The zone's `cache` block; fields left out keep their value (default on create)."""

    cache: Duration | None = Field(
        None,
        description='Edge TTL for responses without freshness of their own; "0" or "": '
        "RFC 9111 heuristics only.",
    )
    expiry: Duration | None = Field(
        None, description='max-age sent to clients; "": pass the origin\'s through.'
    )
    querystring: YesNo | None = Field(
        None, description="Y: the query string is part of the cache key."
    )
    cachecontrol: YesNo | None = Field(
        None, description="Y: honour the origin's Cache-Control and Expires."
    )
    usestale: YesNo | None = Field(
        None, description="Y: serve stale content when the origin fails."
    )
    revalidate: YesNo | None = Field(
        None, description="Y: revalidate expired objects with conditional requests."
    )
    cacheInSecs: DerivedSeconds | None = Field(
        None, description="Read-only (derived from cache): accepted only when it agrees."
    )
    cacheInMins: DerivedSeconds | None = Field(
        None, description="Read-only (derived from cache): accepted only when it agrees."
    )
    expiryInSecs: DerivedSeconds | None = Field(
        None, description="Read-only (derived from expiry): accepted only when it agrees."
    )
    expiryInMins: DerivedSeconds | None = Field(
        None, description="Read-only (derived from expiry): accepted only when it agrees."
    )

    def apply_to(self, policy: CachePolicy) -> CachePolicy:
        """`policy` with the fields given here changed; a derived field (`cacheInSecs`, …)
        that disagrees with the result is a BadRequest."""
        block = policy.to_api()
        for field in ("cache", "expiry", "querystring", "cachecontrol", "usestale", "revalidate"):
            value = getattr(self, field)
            if value is not None:
                block[field] = value
        result = CachePolicy.from_api(block)
        derived = (
            ("cacheInSecs", "cache", result.cache, result.cache_secs, 1),
            ("cacheInMins", "cache", result.cache, result.cache_secs, 60),
            ("expiryInSecs", "expiry", result.expiry, result.expiry_secs, 1),
            ("expiryInMins", "expiry", result.expiry, result.expiry_secs, 60),
        )
        for field, source, text, secs, unit in derived:
            given = getattr(self, field)
            if given is not None and given != secs // unit:
                raise BadRequest(
                    f"cache.{field} is {given} but {source} {text!r} is {secs // unit}: "
                    f"{field} is derived from {source}; change {source} instead"
                )
        return result


class CacheUpdate(CacheIn):
    """Body of `POST …/{zoneid}/cache`: the cache block's fields at the top level; the
    block wrapped as `{"cache": {…}}` is accepted too."""

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) == 1 and isinstance(data.get("cache"), dict):
            return data["cache"]
        return data


# --- the ssl block ---------------------------------------------------------------------

SSL_MODES = ("default", "S")


def _flag(value: object) -> object:
    """Y/N in any case, or a boolean; "" stands for "leave it as it is" (None)."""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, str):
        text = value.strip().upper()
        if text in ("1", "TRUE", "YES", "ON"):  # PHP forms send true as 1
            return "Y"
        if text in ("0", "FALSE", "NO", "OFF"):
            return "N"
        return None if text == "" else text
    return value


def _certid(value: object) -> object:
    if value is None:
        return 0  # 5centscdn answers `"certid": null` for none
    if isinstance(value, bool):
        raise ValueError("must be a certificate id (an integer), not true/false")
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
        return int(value.strip())
    return value


def _mode(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        return "S" if text.upper() == "S" else text.lower()
    return value


def _warning(value: object) -> str:
    """5centscdn's `false` (a form's `0`) and an empty string both mean "no warning"."""
    if value is None or value is False or value in ("0", "false"):
        return ""
    if isinstance(value, str):
        return value
    raise ValueError("is read-only: pullzone sets it; leave it out")


# What the ssl block's fields accept, for the schema: more than the answers say, since
# 5centscdn's clients send booleans, "" and null (each meaning what the validators say).
_FLAG_SCHEMA = {
    "anyOf": [
        {"type": "string", "enum": ["Y", "N", "y", "n", ""]},
        {"type": "boolean"},
        {"type": "null"},
    ]
}
Flag = Annotated[Literal["Y", "N"] | None, BeforeValidator(_flag), WithJsonSchema(_FLAG_SCHEMA)]
CertId = Annotated[
    int,
    Field(ge=0, le=MAX_ZONE_ID),
    BeforeValidator(_certid),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_ZONE_ID}, {"type": "null"}]}
    ),
]
SslMode = Annotated[
    Literal["default", "S"] | None,
    BeforeValidator(_mode),
    WithJsonSchema({"anyOf": [{"type": "string", "enum": list(SSL_MODES)}, {"type": "null"}]}),
]
SslWarning = Annotated[
    str,
    BeforeValidator(_warning),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"const": False}, {"type": "null"}], "readOnly": True}
    ),
]


class SslIn(BaseModel):
    """The zone's `ssl` block; fields left out keep their value (off on create)."""

    model_config = ConfigDict(extra="forbid")

    enabled: Flag = Field(None, description="Y: serve the zone over HTTPS.")
    http2: Flag = Field(None, description="Y: offer HTTP/2 (ALPN h2) besides HTTP/1.1.")
    redirect: Flag = Field(
        None, description="Y: plain-HTTP requests get a redirect to the same URL over https."
    )
    mode: SslMode = Field(None, description='"default" or 5centscdn\'s "S" (SNI); both mean SNI.')
    certid: CertId | None = Field(
        None,
        description="Id of the account certificate served (GET /v2/account/ssl); 0 or null: "
        "none (an automatic certificate when the node has an ACME directory).",
    )
    warning: SslWarning | None = Field(
        None, description="Read-only: why HTTPS is not served as asked. Accepted when unchanged."
    )

    def apply_to(self, policy: SslPolicy) -> SslPolicy:
        """`policy` with the fields given here changed; a changed `warning` is a BadRequest."""
        if self.warning is not None and self.warning != policy.warning:
            raise BadRequest(
                "ssl.warning is read-only: pullzone sets it (e.g. while an automatic "
                "certificate cannot be obtained); leave it out or send it unchanged"
            )
        changes: dict[str, Any] = {}
        for field in ("enabled", "http2", "redirect"):
            value = getattr(self, field)
            if value is not None:
                changes[field] = value == "Y"
        if self.mode is not None:
            changes["mode"] = self.mode
        if self.certid is not None:
            changes["certid"] = self.certid
        return replace(policy, **changes)


PemText = Annotated[
    str,
    Field(
        description="PEM text (at most 64 KiB).",
        json_schema_extra={"maxLength": 65536},
    ),
]


class SslUpdate(SslIn):
    """Body of `POST …/{zoneid}/ssl`: the ssl block's fields at the top level (or wrapped
    as `{"ssl": {…}}`), and optionally a certificate inline (`crt` and `key`, `cabundle`),
    stored as an account certificate and set as the zone's `certid`."""

    name: str = Field("", description="Name of the inline certificate; default: the zone's alias.")
    crt: PemText = Field("", description="Inline PEM certificate (with `key`).")
    key: PemText = Field("", description="Inline PEM private key; never answered.")
    cabundle: PemText = Field("", description="Inline PEM intermediates.")
    method_override: Literal["POST", "PUT"] | None = Field(
        None, alias="_METHOD", description="Accepted and ignored."
    )

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) == 1 and isinstance(data.get("ssl"), dict):
            return data["ssl"]
        if isinstance(data, dict):
            for key in ("_METHOD", "name", "crt", "key", "cabundle"):
                if key in data and data[key] is None:
                    raise ValueError(f"{key}: null is not a value here; leave the field out")
            if isinstance(data.get("_METHOD"), str):
                return {**data, "_METHOD": data["_METHOD"].upper()}
        return data

    @property
    def inline(self) -> bool:
        return bool(self.crt.strip() or self.key.strip() or self.cabundle.strip())


# --- answers ---------------------------------------------------------------------------


class CacheOut(BaseModel):
    cache: str = Field(examples=["4h"])
    expiry: str = Field(examples=[""])
    querystring: Literal["Y", "N"]
    cachecontrol: Literal["Y", "N"]
    usestale: Literal["Y", "N"]
    revalidate: Literal["Y", "N"]
    cacheInSecs: int = Field(examples=[14400])
    cacheInMins: int = Field(examples=[240])
    expiryInSecs: int = Field(examples=[0])
    expiryInMins: int = Field(examples=[0])


class SslOut(BaseModel):
    enabled: Literal["Y", "N"]
    http2: Literal["Y", "N"]
    redirect: Literal["Y", "N"]
    mode: str = Field(examples=["default"])
    certid: int = Field(description="The account certificate served; 0: none.")
    warning: str = Field(description="Why HTTPS is not served as asked; empty: nothing wrong.")


class ZoneOut(BaseModel):
    """A zone, in 5centscdn's field names."""

    id: int = Field(examples=[42])
    serviceid: int = Field(description="One number per installation.", examples=[4822541])
    hashid: str = Field(description="Stable per zone.", examples=["1oc20xaw7t04"])
    type: Literal["pull"]
    mode: Literal["http"]
    optimize: Literal["http"]
    alias: str = Field(examples=["my-site"])
    name: str = Field(examples=["my site"])
    origin: str = Field(examples=["https://origin.example.com"])
    backup: str = Field(description='A second origin URL; "": none.', examples=[""])
    hostHeader: str = Field(
        description="Host sent to the origin (the origin's host when none is set).",
        examples=["origin.example.com"],
    )
    cnames: str = Field(examples=["cdn.example.com"])
    cnamesArr: list[str] = Field(examples=[["cdn.example.com"]])
    cnamesArrFqdn: list[str] = Field(
        description="Every hostname of the zone: its fqdn and its cnames.",
        examples=[["my-site.localhost", "cdn.example.com"]],
    )
    fqdn: str = Field(examples=["my-site.localhost"])
    disabled: Literal["0", "1"]
    status: Literal["Enabled", "Disabled"]
    created_at: str = Field(
        description="UTC, YYYY-MM-DD HH:MM:SS", examples=["2025-01-31 12:00:00"]
    )
    updated_at: str = Field(
        description="UTC, YYYY-MM-DD HH:MM:SS", examples=["2025-01-31 12:00:00"]
    )
    cache: CacheOut
    ssl: SslOut
    edge: dict[str, str] = Field(description="The edge block (docs/zones.md, Blocks).")
    securetoken: dict[str, str | int] = Field(description="Signed URLs.")
    domainlock: dict[str, str] = Field(description="Referer rules.")
    geoblock: dict[str, str | list[str]] = Field(description="Country rules.")
    ipaccess: dict[str, str] = Field(description="Client address rules.")
    useragent: dict[str, str] = Field(description="User-Agent rules.")
    bwlimit: dict[str, str | int] = Field(description="Per-connection rate limit.")
    originip: dict[str, str] = Field(description="A pinned origin address.")
    shield: dict[str, str] = Field(description="The origin shield.")
    warnings: list[str] | None = Field(
        None,
        description="What may not work as configured (e.g. a certificate that does not "
        "cover some of the zone's hostnames); null: nothing.",
    )


class ZoneList(BaseModel):
    result: Literal["success"]
    zones: list[ZoneOut]


class ZoneAnswer(BaseModel):
    result: Literal["success"]
    zone: ZoneOut


class ZoneChanged(BaseModel):
    result: Literal["success"]
    message: str = Field(examples=["Zone updated successfully"])
    zone: ZoneOut


class Done(BaseModel):
    result: Literal["success"]
    message: str = Field(examples=["Zone Deleted"])


class ErrorAnswer(BaseModel):
    result: Literal["error"]
    message: str = Field(description="What is wrong and how to fix it.")


class AuthError(BaseModel):
    code: Literal[401, 403]
    message: str = Field(description="The same message as the answer's `message`.")


class AuthErrorAnswer(ErrorAnswer):
    """A 401 or 403: our shape, and 5centscdn's (`status`, `errors`) beside it."""

    status: Literal["error"]
    errors: list[AuthError] = Field(min_length=1, max_length=1)


class PurgeAnswer(BaseModel):
    result: Literal["success"]
    message: str = Field(examples=["Zone Purged"])
    id: int = Field(description="The purge's sequence number in the event log.")
    purged: int | None = Field(
        default=None, description="Cached objects a listed-file or tag purge matched."
    )
    pending: list[str] | None = Field(
        default=None,
        description="Cluster edges that had not confirmed the purge within the wait; each "
        "applies it before it serves again.",
    )


class PrefetchAnswer(BaseModel):
    result: Literal["success"]
    message: str = Field(examples=["Zone Prefetched"])
    id: int = Field(description="The prefetch's sequence number in the event log.")
    files: int = Field(description="Objects asked for (each file once).")
    pending: list[str] | None = Field(
        default=None,
        description="Cluster edges that had not confirmed they stored the objects within the wait.",
    )


class PurgeRecord(BaseModel):
    id: int
    created_at: str
    key: str = Field(description="Id of the API key that asked for the purge.")
    all: bool
    delete: bool
    files: list[str]
    tags: list[str]
    matched: int | None
    reclaimed_at: str | None = Field(
        description="For a whole-zone delete: when its bytes were reclaimed."
    )
    quarantined: str | None = Field(
        None,
        description="Why this node could not apply the purge, when it could not: the event "
        "was set aside and the events after it applied (docs/hardening.md).",
    )


class PurgeHistory(BaseModel):
    result: Literal["success"]
    purges: list[PurgeRecord]


# --- stats (our extension: /v2/stats) ---------------------------------------------------


class ZoneStats(BaseModel):
    id: int
    name: str
    fqdn: str
    requests: int = Field(description="Edge responses for the zone.")
    hits: int = Field(description="Of those, answered from the cache (HIT or STALE).")
    hit_ratio: float | None = Field(description="hits / requests; null before any request.")
    bytes: int = Field(description="Bytes the edge wrote for the zone (headers included).")
    origin_requests: int
    cache_bytes: int = Field(description="Bytes the zone holds in this node's cache.")
    cache_objects: int


class StatsSeries(BaseModel):
    start: int = Field(description="Unix time of the first minute.")
    step: int = Field(description="Seconds per value (60).")
    statuses: dict[str, list[int]] = Field(
        description="Requests per minute by X-Cache status, oldest first (60 values)."
    )


class StatsHistoryZone(BaseModel):
    id: int
    requests: int
    hits: int
    hit_ratio: float | None
    bytes: int
    origin_requests: int


class StatsHistory(BaseModel):
    start: int = Field(description="Unix time of the first bucket (`from`, rounded down).")
    end: int = Field(description="Unix time the last bucket ends (`to`, rounded up).")
    step: int = Field(description="Seconds per bucket: 60 or 3600.")
    requests: list[int] = Field(description="Edge responses per bucket, oldest first.")
    bytes: list[int] = Field(description="Bytes the edge wrote per bucket.")
    origin_requests: list[int] = Field(description="Origin requests per bucket.")
    statuses: dict[str, list[int]] = Field(
        description="Edge responses per bucket by X-Cache status (statuses seen only)."
    )
    zones: list[StatsHistoryZone] = Field(description="Each zone's figures over the span.")


class StatsFigures(BaseModel):
    since: str = Field(description="When the node (the earliest node) started counting (UTC).")
    zones: list[ZoneStats]
    series: StatsSeries
    history: StatsHistory


class Stats(StatsFigures):
    result: Literal["success"]
    nodes: dict[str, StatsFigures] | None = Field(
        None, description="Cluster mode: each edge's own figures, by node id."
    )
    total: StatsFigures | None = Field(
        None, description="Cluster mode: the sum of `nodes` (as the top-level figures)."
    )
    unreachable: list[str] | None = Field(
        None,
        description="Cluster mode: edges that did not answer within a second, or were not "
        "heard from for more than 15 s (listed for up to 24 hours after they were last "
        "heard from, unless they stopped cleanly).",
    )
    last_heard: dict[str, str] | None = Field(
        None,
        description="Cluster mode: when each edge in `unreachable` was last heard from (UTC).",
    )


# --- API keys (our extension: /v2/keys) ------------------------------------------------


def _key_zones(value: object) -> object:
    """`zones` of a new key: null (every zone) or a non-empty list of positive integers;
    returned sorted, without repeats."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(
            "must be a JSON array of zone ids, for example [42, 43]; null or left out: every zone"
        )
    if not value:
        raise ValueError(
            "an empty list would give the key no zone at all: list the zone ids it may use, "
            "or leave zones out (or null) for every zone"
        )
    if len(value) > MAX_KEY_ZONES:
        raise ValueError(f"at most {MAX_KEY_ZONES} zone ids per key")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item <= MAX_ZONE_ID:
            raise ValueError(f"zone ids are positive integers, not {short(item)}")
    return sorted(set(value))


def _method(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


class KeyCreate(BaseModel):
    """Body of `POST /v2/keys`. Unknown fields are refused; `zones` null means every zone."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str,
        AfterValidator(_check_name),
        Field(
            description="A label for the key, shown by `GET /v2/keys` (not empty, no control "
            "characters).",
            examples=["deploy-bot"],
            json_schema_extra={"maxLength": MAX_NAME, "pattern": _NAME_PATTERN},
        ),
    ]
    zones: Annotated[
        list[int] | None,
        BeforeValidator(_key_zones),
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1, "maximum": MAX_ZONE_ID},
                        "minItems": 1,
                        "maxItems": MAX_KEY_ZONES,
                    },
                    {"type": "null"},
                ],
                "description": "Ids of the zones the key may use (each must exist); left out "
                "or null: every zone, present and future.",
                "examples": [[42, 43]],
            }
        ),
    ] = None
    purge_only: StrictBool = Field(
        False,
        description="true: the key may read and purge its zones, never change or delete "
        "them. Only the admin key creates zones, whatever this says.",
    )
    method_override: Annotated[Literal["PUT", "POST"] | None, BeforeValidator(_method)] = Field(
        None,
        alias="_METHOD",
        description='As on 5centscdn\'s create routes: "PUT" (or "POST"), accepted and ignored.',
    )


class KeyOut(BaseModel):
    """An API key as the API shows it: never the key itself, nor its hash."""

    id: str = Field(examples=["key_3f9a1c0b2d4e"])
    apikeyid: int | None = Field(
        description="The key's id under /v2/account/api (null for none: the key was not "
        "generated by pullzone).",
        examples=[69931128008014],
    )
    name: str = Field(examples=["deploy-bot"])
    description: str = Field(description="Set through /v2/account/api; empty by default.")
    admin: bool = Field(description="The admin key (id `admin`): may do anything.")
    zones: list[int] | None = Field(
        description="Zone ids the key may use; null: every zone.", examples=[[42, 43]]
    )
    purge_only: bool = Field(description="The key may read and purge, not change or delete.")
    permission: list[PermissionName] = Field(
        description="What the key may do in its zones (docs/api.md, Keys and scopes).",
        examples=[["read", "update", "delete"]],
    )
    created_at: str = Field(
        description="UTC, YYYY-MM-DD HH:MM:SS", examples=["2025-01-31 12:00:00"]
    )
    revoked_at: str | None = Field(description="When it was revoked (UTC); null: it is live.")


class KeyList(BaseModel):
    result: Literal["success"]
    keys: list[KeyOut]


class KeyCreated(BaseModel):
    result: Literal["success"]
    message: str = Field(examples=["Key Created"])
    key: KeyOut
    secret: str = Field(
        description="The key to send as X-API-Key. Shown only in this answer: it is stored "
        "hashed and cannot be shown again."
    )


# --- account certificates (5centscdn's /v2/account/ssl) --------------------------------


class CertUpload(Strict):
    """Body of `POST /v2/account/ssl/new`."""

    name: str = Field("", description="A label; default: the certificate's domain and expiry date.")
    crt: PemText = Field(description="The PEM certificate (a fullchain is split).")
    key: PemText = Field(description="Its PEM private key (unencrypted); never answered.")
    cabundle: PemText = Field("", description="PEM intermediates, the leaf's issuer first.")
    method_override: Annotated[Literal["PUT", "POST"] | None, BeforeValidator(_method)] = Field(
        None,
        alias="_METHOD",
        description='5centscdn\'s examples send "_METHOD": "PUT"; accepted and ignored.',
    )


class CertUpdate(Strict):
    """Body of `POST /v2/account/ssl/{id}`: `crt` and `key` together (with `cabundle`),
    or `name` alone, or both; `"_METHOD": "DELETE"` deletes the certificate instead."""

    name: str | None = Field(None, description="A new label.")
    crt: PemText | None = Field(None, description="A new PEM certificate (with key).")
    key: PemText | None = Field(None, description="Its PEM private key; never answered.")
    cabundle: PemText | None = Field(None, description="PEM intermediates (with crt and key).")
    method_override: Annotated[
        Literal["POST", "PUT", "DELETE"] | None, BeforeValidator(_method)
    ] = Field(None, alias="_METHOD", description='"DELETE": delete the certificate.')


class CertOut(BaseModel):
    """An account certificate, as 5centscdn shows it; the key is never shown."""

    id: int = Field(examples=[7])
    name: str = Field(examples=["example.com 2027-01-01"])
    crt: str = Field(description="The PEM leaf certificate.")
    key: Literal["--- redacted ---"]
    cabundle: str = Field(description="The PEM intermediates served after the leaf.")
    domain: str = Field(examples=["example.com"])
    sans: list[str] = Field(examples=[["example.com", "*.example.com"]])
    expiry: str = Field(description="notAfter, UTC date YYYY-MM-DD", examples=["2027-01-01"])
    validFrom: str = Field(description="notBefore, UTC date YYYY-MM-DD", examples=["2026-01-01"])
    expired: bool
    installs: int = Field(description="How many zones use it (their ssl.certid).")
    zones: list[int] = Field(description="The ids of those zones.")
    source: str = Field(description='"upload", or "acme" for one pullzone obtained.')
    created_at: str
    updated_at: str


class CertAnswer(BaseModel):
    result: Literal["success"]
    cert: CertOut


class CertChanged(CertAnswer):
    message: str = Field(examples=["Operation completed successfully"])


class CertList(BaseModel):
    result: Literal["success"]
    certs: list[CertOut]


# --- API keys as 5centscdn's /v2/account/api ----------------------------------------------

MAX_DESCRIPTION = 1000

_PERMISSION_HINT = "read, create, update, delete (or purge: purging without update)"


def _check_description(value: str) -> str:
    text = value.strip()
    if len(text) > MAX_DESCRIPTION:
        raise ValueError(f"must be at most {MAX_DESCRIPTION} characters")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("must not contain control characters")
    return text


def _permission_list(value: Any) -> Any:
    """`permission[]`: a non-empty list of known permissions (a lone string, as a form's
    `permission=read` sends it, is a list of one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"must be a JSON array of permissions: {_PERMISSION_HINT}")
    if not value:
        raise ValueError(f"must name at least one permission: {_PERMISSION_HINT}")
    names = []
    for item in value:
        name = item.strip().lower() if isinstance(item, str) else item
        if name not in PERMISSIONS:
            raise ValueError(f"unknown permission {short(item)}; use {_PERMISSION_HINT}")
        names.append(name)
    return list(normalized(names))


KeyName = Annotated[
    str,
    AfterValidator(_check_name),
    Field(
        description="A label for the key (not empty, no control characters).",
        examples=["My Application"],
        json_schema_extra={"maxLength": MAX_NAME, "pattern": _NAME_PATTERN},
    ),
]
KeyDescription = Annotated[
    str,
    AfterValidator(_check_description),
    Field(
        description="What the key is for (no control characters).",
        examples=["Used by the mobile app"],
        json_schema_extra={"maxLength": MAX_DESCRIPTION, "pattern": rf"^[^{_NO_CC}]*$"},
    ),
]
PermissionList = Annotated[
    list[PermissionName],
    BeforeValidator(_permission_list),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "enum": list(PERMISSIONS)},
            "minItems": 1,
            "description": "What the key may do: read, create (zones), update (change and "
            "purge zones), delete (zones); purge is pullzone's (purging without update). "
            "Sent as `permission[]` (5centscdn's name) or `permission`; a permission named "
            "twice counts once.",
            "examples": [["read", "update"]],
        }
    ),
]
_PERMISSION_FIELD = AliasChoices("permission[]", "permission")


class AccountKeyCreate(Strict):
    """Body of `POST /v2/account/api/new`."""

    name: KeyName
    description: KeyDescription = ""
    permission: PermissionList = Field(validation_alias=_PERMISSION_FIELD)
    method_override: Annotated[Literal["PUT", "POST"] | None, BeforeValidator(_method)] = Field(
        None,
        alias="_METHOD",
        description='5centscdn\'s examples send "_METHOD": "PUT"; accepted and ignored.',
    )


class AccountKeyUpdate(Strict):
    """Body of `POST /v2/account/api/{apikeyid}`: the fields to change (those left out
    keep their value); `"_METHOD": "DELETE"` deletes the key instead."""

    name: KeyName | None = None
    description: KeyDescription | None = None
    permission: PermissionList | None = Field(None, validation_alias=_PERMISSION_FIELD)
    method_override: Annotated[
        Literal["POST", "PUT", "DELETE"] | None, BeforeValidator(_method)
    ] = Field(None, alias="_METHOD", description='"DELETE": delete the key.')


class AccountKeyOut(BaseModel):
    """A key as 5centscdn's `/v2/account/api` shows it; never its secret or hash."""

    id: int = Field(description="The key's id (`apikeyid`); the admin key's is 1.")
    serviceid: int = Field(description="The installation's number, as in zone answers.")
    name: str = Field(examples=["My Application"])
    description: str = Field(examples=["Used by the mobile app"])
    permission: list[PermissionName] = Field(examples=[["read", "update"]])
    zones: list[int] | None = Field(
        description="pullzone's: the zones a key made by /v2/keys is limited to; null: every zone."
    )
    created_at: str = Field(description="pullzone's: UTC, YYYY-MM-DD HH:MM:SS")


class AccountKeyList(BaseModel):
    result: Literal["success"]
    apikeys: list[AccountKeyOut]


class AccountKeyAnswer(BaseModel):
    result: Literal["success"]
    apikey: AccountKeyOut


class AccountKeyCreated(BaseModel):
    result: Literal["success"]
    message: Literal["API Key Created"]
    id: int = Field(description="The new key's id (`apikeyid`).")
    hash: str = Field(
        description="The key to send as X-API-Key. Shown only in this answer: pullzone "
        "stores it hashed, so `GET /v2/account/api` cannot show it again."
    )
