"""What each SDK call sends and how its answer is read: pure, no I/O.

Each call of the API is a builder here: its parameters are the SDK method's (the clients
expose the builders as methods, see `client._Call`), and it returns a `Call`: method, path,
query, body, whether it may be retried, and how its typed result (`_results`) is read from
the answer. Reading success and error answers and the message of a transport failure live
here too; when to retry lives in `_retry`. `Client` and `AsyncClient` only move bytes, so
the two cannot drift apart and every call can be tested without a network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypedDict, TypeVar, Unpack

import httpx

from pullzone import __version__, defaults
from pullzone.client import _results, _signing
from pullzone.client._results import (
    ApiKey,
    Certificate,
    NewKey,
    PrefetchResult,
    PurgeRecord,
    PurgeResult,
    Unexpected,
    Zone,
)
from pullzone.limits import MAX_API_BODY

T = TypeVar("T")

DEFAULT_API_URL = defaults.API_URL
ZONES = "/zones/http/pull"
KEYS = "/keys"
CERTS = "/account/ssl"
MAX_BODY_BYTES = MAX_API_BODY  # the API's default limits per purge request


class ApiError(Exception):
    """The API said no (`{"result":"error"}` or a non-2xx status), or could not be reached.

    `status` is the HTTP status, or 0 when no answer came (connection refused, timeout).
    `message` is the API's own message, meant for the person who made the call.
    `attempts` is how many times the call was sent before giving up (1: no retry).
    """

    __module__ = "pullzone.client"

    def __init__(self, status: int, message: str, *, attempts: int = 1) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message if self.status == 0 else f"{self.message} (HTTP {self.status})"

    def __repr__(self) -> str:
        return f"ApiError({self.status!r}, {self.message!r})"


class Answer(NamedTuple):
    """A success answer: its HTTP status and its JSON object, as the API sent it."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API request and how to read the caller's result out of its success answer.

    `path` is relative to the base URL (which ends in `/v2`); `json` None means no body.
    `idempotent`: sending it twice does what sending it once does, so it may be retried
    when an attempt's fate is unknown (every call but creating a zone or a key).
    """

    method: str
    path: str
    pick: Callable[[dict[str, Any]], T]
    params: Mapping[str, str] | None = None
    json: Any = None
    idempotent: bool = True

    def request(self) -> dict[str, Any]:
        """The keyword arguments of `httpx.Client.request` (and of the async one)."""
        body = None if self.json is None else encode_json(self.json)
        return {
            "method": self.method,
            "url": self.path,
            "params": self.params,
            "content": body,
            "headers": None if body is None else {"Content-Type": "application/json"},
        }

    def result(self, answer: Answer) -> T:
        try:
            return self.pick(answer.body)
        except (Unexpected, KeyError, TypeError) as exc:
            raise ApiError(
                answer.status, f"unexpected answer from the API: {exc.args[0] if exc.args else exc}"
            ) from None


def encode_json(value: Any) -> bytes:
    """A request body exactly as it is sent (compact UTF-8 JSON); purge batches are sized
    with it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def check_zone_id(value: int | str) -> int:
    """A zone id: a positive integer (or its digits); raises ValueError for anything else."""
    text = str(value)
    if isinstance(value, bool) or not text.isascii() or not text.isdigit() or int(text) == 0:
        raise ValueError(f"zone id must be a positive integer, not {value!r}")
    return int(text)


def zone_path(zone_id: int | str) -> str:
    """`/zones/http/pull/{id}`; the id must be a positive integer (or its digits)."""
    return f"{ZONES}/{check_zone_id(zone_id)}"


_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def key_path(key_id: str) -> str:
    """`/keys/{id}`; the id (as `keys.list()` shows it, not the secret) is letters, digits,
    `_` and `-`, so it can never leave its path segment."""
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ValueError(
            f"key id must be an id as listed by the API (like key_3f9a1c0b2d4e), not {key_id!r}"
        )
    return f"{KEYS}/{key_id}"


# --- zones -----------------------------------------------------------------------------------


class CacheFields(TypedDict, total=False):
    """A zone's `cache` block, to change: only the fields given change. The Y/N fields take
    True/False (or "Y"/"N")."""

    cache: str
    expiry: str
    querystring: bool | str
    cachecontrol: bool | str
    usestale: bool | str
    revalidate: bool | str


class ZoneFields(TypedDict, total=False):
    """Optional fields of a zone. `cnames`: host names (or IPs), a list or comma-separated;
    `disabled`: True answers 403 to every request."""

    alias: str
    cnames: str | Sequence[str]
    host_header: str
    disabled: bool
    cache: CacheFields


class ZoneChanges(ZoneFields, total=False):
    """The fields of a zone update: any of them."""

    name: str
    origin: str


_ZONE_FIELDS = {
    "name": "name",
    "origin": "origin",
    "alias": "alias",
    "cnames": "cnames",
    "host_header": "hostHeader",
    "disabled": "disabled",
    "cache": "cache",
}
_YES_NO = ("querystring", "cachecontrol", "usestale", "revalidate")
_CACHE_FIELDS = ("cache", "expiry", *_YES_NO)


def _cache_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in _CACHE_FIELDS:
            raise TypeError(f"unknown cache field {name!r}; the fields: {', '.join(_CACHE_FIELDS)}")
        if value is not None:
            body[name] = ("Y" if value else "N") if isinstance(value, bool) else value
    return body


def _zone_body(fields: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body in 5centscdn's names; `extra` is sent as it is (other 5centscdn fields)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in _ZONE_FIELDS:
            raise TypeError(
                f"unknown zone field {name!r}; the fields: {', '.join(_ZONE_FIELDS)} "
                "(send other 5centscdn fields as extra={...})"
            )
        if value is None:
            continue
        if name == "cnames" and not isinstance(value, str):
            value = ",".join(_strings("cnames", value))
        elif name == "disabled" and isinstance(value, bool):
            value = "1" if value else "0"
        elif name == "cache" and isinstance(value, Mapping):
            value = _cache_body(value)
        body[_ZONE_FIELDS[name]] = value
    return {**body, **(extra or {})}


def list_zones() -> Call[list[Zone]]:
    """Every zone the key may see."""
    return Call("GET", ZONES, _results.zone_list)


def get_zone(zone_id: int | str) -> Call[Zone]:
    """One zone."""
    return Call("GET", zone_path(zone_id), _results.one_zone)


def sign_url(
    zone_id: int | str, path: str, *, expires: int | None = None, ip: str | None = None
) -> Call[str]:
    """A signed URL of `path` on the zone's hostname (its `securetoken` block, docs/zones.md),
    valid `expires` seconds from now (default: the block's `timeout`); `ip`: the client's
    address, needed when the block binds links to it (keyip). Reads the zone (its secret)
    through the API; raises ValueError when the zone has no secret or the link could not
    be used (a path without a leading /, keyip without `ip`)."""
    return Call(
        "GET", zone_path(zone_id), lambda answer: _signing.signed_url(answer, path, expires, ip)
    )


def create_zone(
    name: str, origin: str, *, extra: Mapping[str, Any] | None = None, **fields: Unpack[ZoneFields]
) -> Call[Zone]:
    """A new zone pulling from `origin` (an http or https URL). `alias` (default: from the
    name) makes its hostname ALIAS.EDGE_DOMAIN; `extra`: other 5centscdn fields, as they are."""
    body = _zone_body({"name": name, "origin": origin, **fields}, extra)
    return Call("POST", f"{ZONES}/new", _results.one_zone, json=body, idempotent=False)


def update_zone(
    zone_id: int | str, *, extra: Mapping[str, Any] | None = None, **fields: Unpack[ZoneChanges]
) -> Call[Zone]:
    """Change the fields given (a `cache` block changes field by field); the zone as it is now."""
    return Call("POST", zone_path(zone_id), _results.one_zone, json=_zone_body(fields, extra))


def update_cache(zone_id: int | str, **fields: Unpack[CacheFields]) -> Call[Zone]:
    """Change the zone's `cache` block alone; the zone as it is now."""
    path = f"{zone_path(zone_id)}/cache"
    return Call("POST", path, _results.one_zone, json=_cache_body(fields))


def update_block(
    zone_id: int | str, block: str, **fields: str | int | bool | Sequence[str]
) -> Call[Zone]:
    """Change one block of the zone (`edge`, `securetoken`, `domainlock`, `geoblock`,
    `ipaccess`, `useragent`, `bwlimit`, `originip`, `shield`; docs/zones.md, Blocks) field
    by field: True/False are sent as Y/N, lists as lists. The zone as it is now."""
    if not block.isidentifier() or block.startswith("_"):
        raise TypeError(f"{block!r} is not a block name")
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, bool):
            body[name] = "Y" if value else "N"
        elif isinstance(value, str | int):
            body[name] = value
        else:
            body[name] = _strings(f"{block}.{name}", value)
    return Call("POST", f"{zone_path(zone_id)}/{block}", _results.one_zone, json=body)


def delete_zone(zone_id: int | str) -> Call[None]:
    """Delete the zone and everything it has cached."""
    return Call("DELETE", zone_path(zone_id), _results.nothing)


# --- purge -----------------------------------------------------------------------------------


def purge(
    zone_id: int | str,
    files: Iterable[str] | None = None,
    *,
    tags: Iterable[str] | None = None,
    delete: bool = False,
) -> Call[PurgeResult]:
    """Purge `files` (paths like `/videos/file.mp4`, `/images/*`, or URLs on the zone's
    hostnames) and/or `tags`; neither given purges the whole zone (sent with no body).
    `delete`: remove the objects (hard purge); else they turn stale and are revalidated.

    An empty list is sent as it is (the API refuses it): it never widens to the whole zone.
    At most 10,000 files and a 1 MiB body per call: see `purge_batches` for more.
    """
    body: dict[str, list[str]] = {}
    if files is not None:
        body["files"] = _strings("files", files)
    if tags is not None:
        body["tags"] = _strings("tags", tags)
    params = {"delete": "true"} if delete else None
    path = f"{zone_path(zone_id)}/purge"
    return Call("POST", path, _results.purge_result, params=params, json=body or None)


def prefetch(zone_id: int | str, files: Iterable[str]) -> Call[PrefetchResult]:
    """Store `files` (paths like `/videos/file.mp4`, `/page?x=1`, or URLs on the zone's
    hostnames; no `*`) on every edge before visitors ask for them: each edge fetches them
    through its own cache. The answer comes once they are stored (at most about 15 s).

    At most 1,000 files per call: `purge_batches(files, max_files=MAX_PREFETCH_FILES)`
    splits a longer list.
    """
    path = f"{zone_path(zone_id)}/prefetch"
    body = {"files": _strings("files", files)}
    return Call("POST", path, _results.prefetch_result, json=body)


def purges(zone_id: int | str) -> Call[list[PurgeRecord]]:
    """The zone's last 100 purges, newest first."""
    return Call("GET", f"{zone_path(zone_id)}/purges", _results.purge_history)


# --- API keys ----------------------------------------------------------------------------------


def create_key(
    name: str, zones: Iterable[int | str] | None = None, purge_only: bool = False
) -> Call[NewKey]:
    """A new key (the admin key only), limited to `zones` (None: every zone, present and
    future) and, with `purge_only`, to reading and purging. The result has its `secret`:
    the API shows it only this once.

    An empty `zones` is sent as it is (the API refuses it): it never widens to every zone.
    """
    if not isinstance(name, str):
        raise TypeError("name must be a string")
    body: dict[str, Any] = {"name": name, "purge_only": bool(purge_only)}
    if zones is not None:
        if isinstance(zones, str | bytes | Mapping) or not isinstance(zones, Iterable):
            raise TypeError("zones must be a list of zone ids")
        body["zones"] = [check_zone_id(z) for z in zones]
    return Call("POST", KEYS, _results.new_key, json=body, idempotent=False)


def list_keys() -> Call[list[ApiKey]]:
    """Every key, revoked ones included; never a secret."""
    return Call("GET", KEYS, _results.key_list)


def revoke_key(key_id: str) -> Call[None]:
    """Revoke the key of this id (as `keys.list()` shows it, not its secret)."""
    return Call("DELETE", key_path(key_id), _results.nothing)


# --- account certificates and the zone's ssl block -------------------------------------------


def cert_path(cert_id: int | str) -> str:
    """`/account/ssl/{id}`; the id must be a positive integer (or its digits)."""
    text = str(cert_id)
    if isinstance(cert_id, bool) or not text.isascii() or not text.isdigit() or int(text) == 0:
        raise ValueError(f"certificate id must be a positive integer, not {cert_id!r}")
    return f"{CERTS}/{int(text)}"


def _pem(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be PEM text (a str)")
    return value


def list_certs() -> Call[list[Certificate]]:
    """Every account certificate (never a private key)."""
    return Call("GET", CERTS, _results.cert_list)


def get_cert(cert_id: int | str) -> Call[Certificate]:
    """One account certificate."""
    return Call("GET", cert_path(cert_id), _results.one_cert)


def upload_cert(name: str, crt: str, key: str, cabundle: str = "") -> Call[Certificate]:
    """Upload a certificate (`crt`), its private key and its intermediates (`cabundle`),
    all PEM text. The API checks them (the key matches, valid now, the chain verifies)."""
    body = {
        "name": _pem("name", name),
        "crt": _pem("crt", crt),
        "key": _pem("key", key),
        "cabundle": _pem("cabundle", cabundle),
    }
    return Call("POST", f"{CERTS}/new", _results.one_cert, json=body, idempotent=False)


def update_cert(
    cert_id: int | str,
    *,
    name: str | None = None,
    crt: str | None = None,
    key: str | None = None,
    cabundle: str | None = None,
) -> Call[Certificate]:
    """Rename a certificate (`name`) and/or replace it (`crt` and `key` together, with
    `cabundle`); zones using it serve the new one."""
    given = {"name": name, "crt": crt, "key": key, "cabundle": cabundle}
    body = {field: _pem(field, value) for field, value in given.items() if value is not None}
    return Call("POST", cert_path(cert_id), _results.one_cert, json=body)


def delete_cert(cert_id: int | str) -> Call[None]:
    """Delete a certificate (refused, 409, while a zone uses it)."""
    return Call("DELETE", cert_path(cert_id), _results.nothing)


class SslFields(TypedDict, total=False):
    """A zone's `ssl` block, to change: only the fields given change. `crt` and `key` (and
    `cabundle`, `name`) upload a certificate and make it the zone's `certid`."""

    enabled: bool | str
    http2: bool | str
    redirect: bool | str
    mode: str
    certid: int
    name: str
    crt: str
    key: str
    cabundle: str


_SSL_FIELDS = tuple(SslFields.__annotations__)


def update_ssl(zone_id: int | str, **fields: Unpack[SslFields]) -> Call[Zone]:
    """Change the zone's `ssl` block alone; the zone as it is now."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in _SSL_FIELDS:
            raise TypeError(f"unknown ssl field {name!r}; the fields: {', '.join(_SSL_FIELDS)}")
        if value is not None:
            body[name] = ("Y" if value else "N") if isinstance(value, bool) else value
    return Call("POST", f"{zone_path(zone_id)}/ssl", _results.one_zone, json=body)


def _strings(name: str, values: Iterable[str]) -> list[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of strings")
    listed = list(values)
    if not all(isinstance(v, str) for v in listed):
        raise TypeError(f"{name} must be a list of strings")
    return listed


# --- answers ---------------------------------------------------------------------------------


def read_answer(status: int, content: bytes) -> Answer:
    """The JSON object of a success answer; raises ApiError for any error answer."""
    try:
        body = json.loads(content) if content.strip() else None
    except (ValueError, UnicodeDecodeError):
        body = _NOT_JSON
    ok = 200 <= status < 300
    if not ok or (isinstance(body, dict) and body.get("result") == "error"):
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            message = _fallback_message(status, content if body is _NOT_JSON else b"")
        raise ApiError(status, message)
    if not isinstance(body, dict):
        raise ApiError(status, "unexpected answer from the API: not a JSON object")
    return Answer(status, body)


_NOT_JSON = object()


def _fallback_message(status: int, content: bytes) -> str:
    reason = httpx.codes.get_reason_phrase(status) or "error"
    text = content.decode("utf-8", "replace").strip()
    if text and len(text) <= 200 and "<" not in text:
        return f"HTTP {status} {reason}: {text}"
    return f"HTTP {status} {reason}"


_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def unreachable(base_url: str, timeout: float, exc: Exception) -> ApiError:
    """The ApiError (status 0) for a request that got no answer."""
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return ApiError(0, f"no answer from the API at {base_url} within {timeout:g} s")
    reason = _ERRNO.sub("", str(exc)).strip() or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        reason = f"connection timed out after {timeout:g} s"
    return ApiError(0, f"cannot reach the API at {base_url}: {reason}")


def check_base_url(url: str) -> str:
    """The base URL without a trailing slash; raises ValueError unless it is http(s)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = httpx.URL()
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"API URL must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/")


def headers(api_key: str | None) -> dict[str, str]:
    """Headers of every request: the key (when there is one), JSON, who is calling."""
    sent = {"Accept": "application/json", "User-Agent": f"pullzone-client/{__version__}"}
    if api_key:
        sent["X-API-Key"] = api_key
    return sent


def settings(
    base_url: str | None, api_key: str | None, environ: Mapping[str, str]
) -> tuple[str, str | None]:
    """(base URL, key) from the arguments, else `PULLZONE_API_URL` / `PULLZONE_API_KEY`."""
    url = base_url or environ.get("PULLZONE_API_URL") or DEFAULT_API_URL
    key = api_key if api_key is not None else environ.get("PULLZONE_API_KEY")
    return check_base_url(url), key or None
