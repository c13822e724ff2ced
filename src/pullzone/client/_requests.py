"""What each SDK call sends and how its answer is read: pure, no I/O.

`Client` and `AsyncClient` only move bytes. Everything else (method, path, query, body,
reading success and error answers, the message of a transport failure) lives here once, so
the two clients cannot drift apart and every call can be tested without a network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import httpx

from pullzone import __version__

T = TypeVar("T")

DEFAULT_API_URL = "http://127.0.0.1:8081/v2"
ZONES = "/zones/http/pull"
KEYS = "/keys"


class ApiError(Exception):
    """The API said no (`{"result":"error"}` or a non-2xx status), or could not be reached.

    `status` is the HTTP status, or 0 when no answer came (connection refused, timeout).
    `message` is the API's own message, meant for the person who made the call.
    """

    __module__ = "pullzone.client"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message

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
    """One API request and how to pick the caller's result out of its success answer.

    `path` is relative to the base URL (which ends in `/v2`); `json` None means no body.
    """

    method: str
    path: str
    pick: Callable[[dict[str, Any]], T]
    params: Mapping[str, str] | None = None
    json: Any = None

    def result(self, answer: Answer) -> T:
        try:
            return self.pick(answer.body)
        except (KeyError, TypeError) as exc:
            raise ApiError(
                answer.status, f"unexpected answer from the API: {exc.args[0] if exc.args else exc}"
            ) from None


def _field(name: str, kind: type) -> Callable[[dict[str, Any]], Any]:
    def pick(body: dict[str, Any]) -> Any:
        if name not in body:
            raise KeyError(f"no {name!r} in it")
        value = body[name]
        if not isinstance(value, kind):
            raise TypeError(f"{name!r} is not a {kind.__name__}")
        return value

    return pick


def _whole(body: dict[str, Any]) -> dict[str, Any]:
    return body


_zone = _field("zone", dict)
_zones = _field("zones", list)
_purges = _field("purges", list)
_keys = _field("keys", list)


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


def list_zones() -> Call[list[dict[str, Any]]]:
    return Call("GET", ZONES, _zones)


def get_zone(zone_id: int | str) -> Call[dict[str, Any]]:
    return Call("GET", zone_path(zone_id), _zone)


def create_zone(fields: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", f"{ZONES}/new", _zone, json=dict(fields))


def update_zone(zone_id: int | str, fields: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", zone_path(zone_id), _zone, json=dict(fields))


def update_cache(zone_id: int | str, cache_fields: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", f"{zone_path(zone_id)}/cache", _zone, json=dict(cache_fields))


def delete_zone(zone_id: int | str) -> Call[dict[str, Any]]:
    return Call("DELETE", zone_path(zone_id), _whole)


# --- purge -----------------------------------------------------------------------------------


def purge(
    zone_id: int | str,
    files: list[str] | None = None,
    *,
    tags: list[str] | None = None,
    delete: bool = False,
) -> Call[dict[str, Any]]:
    """Files and/or tags; neither given is a whole-zone purge, sent with no body at all.

    An empty list is sent as it is (the API refuses it): it never widens to the whole zone.
    """
    body: dict[str, list[str]] = {}
    if files is not None:
        body["files"] = _strings("files", files)
    if tags is not None:
        body["tags"] = _strings("tags", tags)
    params = {"delete": "true"} if delete else None
    return Call("POST", f"{zone_path(zone_id)}/purge", _whole, params=params, json=body or None)


def purges(zone_id: int | str) -> Call[list[dict[str, Any]]]:
    return Call("GET", f"{zone_path(zone_id)}/purges", _purges)


# --- API keys ----------------------------------------------------------------------------------


def create_key(
    name: str, zones: Iterable[int | str] | None = None, purge_only: bool = False
) -> Call[dict[str, Any]]:
    """A new key; its result is the whole answer: `key` (what is stored) and `secret` (the
    key itself, which the API shows only this once).

    `zones` None: every zone. An empty list is sent as it is (the API refuses it): it never
    widens to every zone.
    """
    if not isinstance(name, str):
        raise TypeError("name must be a string")
    body: dict[str, Any] = {"name": name, "purge_only": bool(purge_only)}
    if zones is not None:
        if isinstance(zones, str | bytes | Mapping) or not isinstance(zones, Iterable):
            raise TypeError("zones must be a list of zone ids")
        body["zones"] = [check_zone_id(z) for z in zones]
    return Call("POST", KEYS, _whole, json=body)


def list_keys() -> Call[list[dict[str, Any]]]:
    return Call("GET", KEYS, _keys)


def revoke_key(key_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", key_path(key_id), _whole)


def _strings(name: str, values: list[str]) -> list[str]:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise TypeError(f"{name} must be a list of strings")
    return list(values)


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
