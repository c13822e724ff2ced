"""What the SDK's calls return: typed, immutable results read from the API's answers. Pure.

The API speaks 5centscdn's field names (`hostHeader`, `cnamesArr`, `"Y"`/`"N"`, `"0"`/`"1"`);
the results use Python's (`host_header`, `cnames`, booleans). Fields the API adds later are
ignored, fields 5centscdn itself leaves out get an empty default, and a field of the wrong
kind is an `Unexpected` answer (the client raises it as an `ApiError`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

V = TypeVar("V")


class Unexpected(ValueError):
    """The answer is not what the call expects (a field missing or of the wrong kind)."""


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A zone's `cache` block.

    `cache`: edge TTL for responses without freshness of their own (`"4h"`; `""` or `"0"`:
    RFC 9111 heuristics only). `expiry`: max-age sent to clients (`""`: the origin's).
    `querystring`: the query string is part of the cache key. `cachecontrol`: the origin's
    Cache-Control/Expires are honoured. `usestale`: stale content may be served while the
    origin fails. `revalidate`: expired objects are revalidated with conditional requests.
    `cache_secs`, `expiry_secs`: the durations in seconds (`cacheInSecs`, `expiryInSecs`).
    """

    __module__ = "pullzone.client"

    cache: str
    expiry: str
    querystring: bool
    cachecontrol: bool
    usestale: bool
    revalidate: bool
    cache_secs: int = 0
    expiry_secs: int = 0


@dataclass(frozen=True, slots=True)
class SslPolicy:
    """A zone's `ssl` block: HTTPS `enabled`, `http2` offered, plain HTTP `redirect`ed to
    https, `mode`, the account certificate served (`certid`, 0: none), and pullzone's
    `warning` (why HTTPS is not served as asked; "" when nothing is wrong)."""

    __module__ = "pullzone.client"

    enabled: bool = False
    http2: bool = False
    redirect: bool = False
    mode: str = "default"
    certid: int = 0
    warning: str = ""


@dataclass(frozen=True, slots=True)
class Certificate:
    """An account certificate as the API shows it (never its private key). `expiry` and
    `valid_from` are UTC dates (YYYY-MM-DD); `installs` how many zones use it, `zones`
    their ids."""

    __module__ = "pullzone.client"

    id: int
    name: str
    domain: str
    sans: tuple[str, ...]
    expiry: str
    valid_from: str
    expired: bool
    installs: int
    zones: tuple[int, ...]
    crt: str
    cabundle: str
    source: str = "upload"
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class Zone:
    """An HTTP pull zone. `host_header` is the API's `hostHeader`, `cnames` its `cnamesArr`;
    `disabled` is True when the zone answers 403 to every request (`status` "Disabled")."""

    __module__ = "pullzone.client"

    id: int
    name: str
    alias: str
    origin: str
    fqdn: str
    host_header: str
    cnames: tuple[str, ...]
    disabled: bool
    status: str
    created_at: str
    updated_at: str
    cache: CachePolicy
    ssl: SslPolicy = field(default_factory=SslPolicy)
    warnings: tuple[str, ...] = ()  # what may not work as configured
    # The other blocks (edge, securetoken, domainlock, …) as the API answers them, and the
    # backup origin; a 5centscdn server's blocks are there too.
    blocks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    backup: str = ""


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """A purge's answer: `id` its number in the purge history, `purged` how many cached
    objects a file or tag purge matched, `pending` the edges that had not confirmed it when
    the answer came (they apply it before serving again). A 5centscdn server sends only the
    message: `id` and `purged` are None then."""

    __module__ = "pullzone.client"

    message: str
    id: int | None = None
    purged: int | None = None
    pending: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PrefetchResult:
    """A prefetch's answer: `id` its number in the event log, `files` how many objects it
    asked for (each file once), `pending` the edges that had not confirmed they stored them
    when the answer came."""

    __module__ = "pullzone.client"

    message: str
    id: int | None = None
    files: int | None = None
    pending: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PurgeRecord:
    """One purge of a zone's history: whole zone (`all`) or `files` and `tags`; hard
    (`delete`) or soft; by the key `key`; `matched` objects; for a whole-zone hard purge,
    when its bytes were reclaimed (`reclaimed_at`, None until then)."""

    __module__ = "pullzone.client"

    id: int
    created_at: str
    key: str
    all: bool
    delete: bool
    files: tuple[str, ...]
    tags: tuple[str, ...]
    matched: int | None
    reclaimed_at: str | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the API shows it (never the secret). `zones` None: every zone;
    `purge_only`: it may read and purge, never change; `revoked_at` None: it is live;
    `permission`: what it may do (docs/api.md, Keys and scopes; empty from a server that
    predates permissions); `apikeyid`: its id under /v2/account/api."""

    __module__ = "pullzone.client"

    id: str
    name: str
    admin: bool
    zones: tuple[int, ...] | None
    purge_only: bool
    created_at: str
    revoked_at: str | None
    description: str = ""
    permission: tuple[str, ...] = ()
    apikeyid: int | None = None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created, with its `secret`: the API shows the secret only this once."""

    __module__ = "pullzone.client"

    key: ApiKey
    secret: str


# --- reading fields ----------------------------------------------------------------------


class _Missing:
    pass


_REQUIRED = _Missing()


def _get(body: Mapping[str, Any], name: str, kind: type[V], default: V | _Missing) -> V:
    if name not in body or (body[name] is None and not isinstance(default, _Missing)):
        if isinstance(default, _Missing):
            raise Unexpected(f"no {name!r} in it")
        return default
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Unexpected(f"{name!r} is not {_KINDS.get(kind, kind.__name__)}")
    return value


_KINDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    list: "a list",
    dict: "a JSON object",
}


def _text(body: Mapping[str, Any], name: str, default: str | _Missing = "") -> str:
    return _get(body, name, str, default)


def _integer(body: Mapping[str, Any], name: str) -> int:
    """An integer, or its digits (some 5centscdn answers quote ids)."""
    value = body.get(name)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return _get(body, name, int, _REQUIRED)


def _optional_int(body: Mapping[str, Any], name: str) -> int | None:
    return None if body.get(name) is None else _get(body, name, int, _REQUIRED)


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _get(body, name, str, _REQUIRED)


def _flag(body: Mapping[str, Any], name: str, on: str = "Y", off: str = "N") -> bool:
    """A boolean from true/false, or 5centscdn's `"Y"`/`"N"` (`"1"`/`"0"`)."""
    value = body.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.upper() in (on, off):
        return value.upper() == on
    raise Unexpected(f"{name!r} is not {on!r} or {off!r}")


def _strings(body: Mapping[str, Any], name: str) -> tuple[str, ...]:
    values = _get(body, name, list, [])
    if not all(isinstance(v, str) for v in values):
        raise Unexpected(f"{name!r} is not a list of strings")
    return tuple(values)


def _objects(body: Mapping[str, Any], name: str, read: Callable[[Mapping[str, Any]], V]) -> list[V]:
    values = _get(body, name, list, _REQUIRED)
    return [read(_object(value, f"an item of {name!r}")) for value in values]


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Unexpected(f"{what} is not a JSON object")
    return value


def _member(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return _get(body, name, dict, _REQUIRED)


# --- results -----------------------------------------------------------------------------


def cache_policy(block: Mapping[str, Any]) -> CachePolicy:
    return CachePolicy(
        cache=_text(block, "cache"),
        expiry=_text(block, "expiry"),
        querystring=_flag(block, "querystring"),
        cachecontrol=_flag(block, "cachecontrol"),
        usestale=_flag(block, "usestale"),
        revalidate=_flag(block, "revalidate"),
        cache_secs=_get(block, "cacheInSecs", int, 0),
        expiry_secs=_get(block, "expiryInSecs", int, 0),
    )


def zone(body: Mapping[str, Any]) -> Zone:
    if "cnamesArr" in body:
        cnames = _strings(body, "cnamesArr")
    else:
        cnames = tuple(c.strip() for c in _text(body, "cnames").split(",") if c.strip())
    return Zone(
        id=_integer(body, "id"),
        name=_text(body, "name"),
        alias=_text(body, "alias"),
        origin=_text(body, "origin"),
        fqdn=_text(body, "fqdn"),
        host_header=_text(body, "hostHeader"),
        cnames=cnames,
        disabled=_flag(body, "disabled", on="1", off="0"),
        status=_text(body, "status"),
        created_at=_text(body, "created_at"),
        updated_at=_text(body, "updated_at"),
        cache=cache_policy(_get(body, "cache", dict, {})),
        ssl=ssl_policy(_get(body, "ssl", dict, {})),
        warnings=_strings(body, "warnings"),
        blocks={
            name: dict(value)
            for name, value in body.items()
            if isinstance(value, dict) and name not in ("cache", "ssl")
        },
        backup=_text(body, "backup", ""),
    )


def ssl_policy(block: Mapping[str, Any]) -> SslPolicy:
    warning = block.get("warning")
    return SslPolicy(
        enabled=_flag(block, "enabled"),
        http2=_flag(block, "http2"),
        redirect=_flag(block, "redirect"),
        mode=_text(block, "mode", "default"),
        certid=0 if block.get("certid") is None else _integer(block, "certid"),
        warning=warning if isinstance(warning, str) else "",  # 5centscdn says false
    )


def certificate(body: Mapping[str, Any]) -> Certificate:
    zones = body.get("zones") or []
    if not isinstance(zones, list) or not all(
        isinstance(z, int) and not isinstance(z, bool) for z in zones
    ):
        raise Unexpected("'zones' is not a list of zone ids")
    return Certificate(
        id=_integer(body, "id"),
        name=_text(body, "name"),
        domain=_text(body, "domain"),
        sans=_strings(body, "sans"),
        expiry=_text(body, "expiry"),
        valid_from=_text(body, "validFrom"),
        expired=_get(body, "expired", bool, False),
        installs=_get(body, "installs", int, len(zones)),
        zones=tuple(zones),
        crt=_text(body, "crt"),
        cabundle=_text(body, "cabundle"),
        source=_text(body, "source", "upload"),
        created_at=_text(body, "created_at"),
        updated_at=_text(body, "updated_at"),
    )


def _pending(body: Mapping[str, Any]) -> tuple[str, ...]:
    pending = body.get("pending") or ()
    if isinstance(pending, str):
        pending = (pending,)
    if not isinstance(pending, list | tuple):
        raise Unexpected("'pending' is not a list")
    return tuple(str(edge) for edge in pending)


def purge_result(body: Mapping[str, Any]) -> PurgeResult:
    return PurgeResult(
        message=_text(body, "message", "Zone Purged"),
        id=_optional_int(body, "id"),
        purged=_optional_int(body, "purged"),
        pending=_pending(body),
    )


def prefetch_result(body: Mapping[str, Any]) -> PrefetchResult:
    return PrefetchResult(
        message=_text(body, "message", "Zone Prefetched"),
        id=_optional_int(body, "id"),
        files=_optional_int(body, "files"),
        pending=_pending(body),
    )


def purge_record(body: Mapping[str, Any]) -> PurgeRecord:
    return PurgeRecord(
        id=_integer(body, "id"),
        created_at=_text(body, "created_at"),
        key=_text(body, "key"),
        all=_get(body, "all", bool, False),
        delete=_get(body, "delete", bool, False),
        files=_strings(body, "files"),
        tags=_strings(body, "tags"),
        matched=_optional_int(body, "matched"),
        reclaimed_at=_optional_text(body, "reclaimed_at"),
    )


def api_key(body: Mapping[str, Any]) -> ApiKey:
    zones = body.get("zones")
    if zones is not None and (
        not isinstance(zones, list)
        or not all(isinstance(z, int) and not isinstance(z, bool) for z in zones)
    ):
        raise Unexpected("'zones' is not a list of zone ids")
    return ApiKey(
        id=_text(body, "id", _REQUIRED),
        name=_text(body, "name"),
        admin=_get(body, "admin", bool, False),
        zones=None if zones is None else tuple(zones),
        purge_only=_get(body, "purge_only", bool, False),
        created_at=_text(body, "created_at"),
        revoked_at=_optional_text(body, "revoked_at"),
        description=_text(body, "description"),
        permission=_strings(body, "permission"),
        apikeyid=_optional_int(body, "apikeyid"),
    )


# --- picking the result out of a whole answer --------------------------------------------


def one_zone(answer: Mapping[str, Any]) -> Zone:
    return zone(_member(answer, "zone"))


def zone_list(answer: Mapping[str, Any]) -> list[Zone]:
    return _objects(answer, "zones", zone)


def purge_history(answer: Mapping[str, Any]) -> list[PurgeRecord]:
    return _objects(answer, "purges", purge_record)


def key_list(answer: Mapping[str, Any]) -> list[ApiKey]:
    return _objects(answer, "keys", api_key)


def new_key(answer: Mapping[str, Any]) -> NewKey:
    return NewKey(key=api_key(_member(answer, "key")), secret=_text(answer, "secret", _REQUIRED))


def one_cert(answer: Mapping[str, Any]) -> Certificate:
    return certificate(_member(answer, "cert"))


def cert_list(answer: Mapping[str, Any]) -> list[Certificate]:
    return _objects(answer, "certs", certificate)


def nothing(answer: Mapping[str, Any]) -> None:
    """For calls whose success answer says only that they succeeded."""
    return None
