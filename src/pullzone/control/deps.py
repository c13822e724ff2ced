"""What routes need before they run, as FastAPI dependencies, checked in this order:
the key (401), the key's rate limit (429), the zone id (400), the key's scope (403), the
zone (404), the body (413, 415, 400). Routes stay a few lines each.

Every dependency is `async def`: FastAPI runs plain `def` ones in a thread pool, and the
API's one SQLite connection must only ever be used from the event loop, so that no read
can see another request's transaction half done.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from pullzone.config import Settings
from pullzone.control import body, certs, keys
from pullzone.control.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
)
from pullzone.control.errors import validation_message as _validation_message
from pullzone.control.keys import Action, Principal
from pullzone.control.log import EventLog
from pullzone.control.metrics import ApiMetrics
from pullzone.control.ratelimit import RateLimiter
from pullzone.control.schemas import MAX_ZONE_ID, short
from pullzone.control.stats import NodeStats
from pullzone.control.stats_query import StatsQuery
from pullzone.control.stats_recorder import Recorder
from pullzone.control.stats_report import NodeReport
from pullzone.control.store import ZoneStore
from pullzone.control.zone_schemas import READ_ONLY, UNSUPPORTED_BLOCKS
from pullzone.limits import MAX_API_BODY
from pullzone.zones.model import Zone

M = TypeVar("M", bound=BaseModel)
# A cluster's edges' figures: their reports by node id, and the nodes that did not answer
# with when each was last heard of, unix time (server/stats_exchange.py).
GatherStats = Callable[[StatsQuery], Awaitable[tuple[dict[str, NodeReport], dict[str, float]]]]

log = logging.getLogger("pullzone.api")


@dataclass
class Control:
    """The API's state: settings, its control.db connection (reads), the zone store on it,
    the event log every change is committed to before the answer, the node's figures and
    metrics, and the per-key rate limiter (from `settings.api_rate` and `api_burst`);
    the node's traffic history (`recorder`, on a node with an edge) and, in a cluster, how
    to ask every edge for its figures (`cluster_stats`)."""

    settings: Settings
    conn: sqlite3.Connection
    zones: ZoneStore
    log: EventLog
    stats: NodeStats
    metrics: ApiMetrics
    limiter: RateLimiter = field(init=False)
    recorder: Recorder | None = None
    cluster_stats: GatherStats | None = None

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.api_rate, self.settings.api_burst)

    def zone_api(self, zone: Zone) -> dict[str, Any]:
        domain = self.settings.edge_domain
        return {**zone.to_api(domain), "warnings": certs.zone_warnings(self.conn, zone, domain)}


async def control(request: Request) -> Control:
    ctl = request.app.state.control
    assert isinstance(ctl, Control)
    return ctl


Ctl = Annotated[Control, Depends(control)]

# --- the key ---------------------------------------------------------------------------

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Your API key. The admin key is PULLZONE_API_KEY or DATA_DIR/admin.key.",
)


async def authenticate(ctl: Ctl, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
    """The caller's key (401 when missing, unknown or revoked), once its rate limit lets
    this call through (429 with Retry-After when not; every key counts, the admin's too)."""
    if not key or not key.strip():
        raise Unauthorized("missing X-API-Key header: send your API key in it")
    return check_key(ctl, key.strip())


def check_key(ctl: Control, key: str) -> Principal:
    """The principal of `key` (401 when unknown or revoked), within its rate limit (429)."""
    principal = keys.authenticate(ctl.conn, key)
    if principal is None:
        raise Unauthorized("unknown or revoked API key: check the X-API-Key header")
    wait = ctl.limiter.take(principal.key_id)
    if wait is not None:
        raise RateLimited(ctl.limiter.rate, wait)
    return principal


Caller = Annotated[Principal, Depends(authenticate)]


def admin_for(doing: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, when it holds the admin key (403 naming `doing` if not)."""

    async def dependency(principal: Caller) -> Principal:
        if not principal.admin:
            raise Forbidden(f"only the admin key may {doing}")
        return principal

    return dependency


async def zone_creator(principal: Caller) -> Principal:
    """The caller, when its key may create zones: the admin key, or a key for every zone
    with the `create` permission (403 otherwise)."""
    if not principal.may("create"):
        raise Forbidden(
            "this API key may not create zones: that takes the admin key, or a key for "
            "every zone with the create permission"
        )
    return principal


async def account_key(principal: Caller) -> Principal:
    """The caller, when its key is for the whole account: the admin key, or a key for
    every zone that may update them (403 otherwise)."""
    if not (principal.admin or (principal.zones is None and principal.may("update"))):
        raise Forbidden(
            "only a key for every zone that may change them (not limited to some zones, "
            "with the update permission) may manage account certificates"
        )
    return principal


# --- the zone --------------------------------------------------------------------------


async def zone_id(
    request: Request,
    zoneid: Annotated[
        str,
        Path(
            description="Zone ID (a positive integer).",
            json_schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_ZONE_ID},
        ),
    ],
) -> int:
    """The `{zoneid}` of the path; anything but a positive integer is a 400."""
    return path_id(request, zoneid, "zone id")


def path_id(request: Request, value: str, what: str) -> int:
    """An id in the path (a zone's, a certificate's): a positive integer, else a 400;
    `new` is the create route, which has POST only (405)."""
    text = value.strip()
    if text == "new":
        raise ApiError(
            f"{request.method} is not allowed on {request.url.path}; use POST",
            status=405,
            headers={"Allow": "POST"},
        )
    if (
        not (text.isascii() and text.isdigit())
        or len(text) > 19
        or not 0 < int(text) <= MAX_ZONE_ID
    ):
        raise BadRequest(f"{what} must be a positive integer, not {short(value, 30)}")
    return int(text)


ZoneId = Annotated[int, Depends(zone_id)]


def zone_for(action: Action) -> Callable[..., Awaitable[Zone]]:
    """A dependency: the zone of the path, once the key may do `action` on it."""

    async def dependency(principal: Caller, zone_id: ZoneId, ctl: Ctl) -> Zone:
        if not principal.may(action, zone_id):
            raise Forbidden(f"this API key may not {action} zone {zone_id}")
        zone = ctl.zones.get(zone_id)
        if zone is None:
            raise NotFound(f"zone {zone_id} not found")
        return zone

    return dependency


# --- the body --------------------------------------------------------------------------


async def read_body(request: Request) -> bytes:
    """The body, up to MAX_API_BODY bytes (413 beyond, without reading the rest)."""
    too_large = ApiError(
        f"the body is larger than {MAX_API_BODY // 1024 // 1024} MiB: send less per request",
        status=413,
        headers={"Connection": "close"},
    )
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > MAX_API_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_API_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def body_object(request: Request) -> dict[str, Any]:
    """The body as an object, JSON or form (`body.decode`); `{}` when there is none."""
    return body.decode(await read_body(request), request.headers.get("content-type"))


def known_fields(model: type[BaseModel]) -> dict[str, list[str]]:
    """Fields accepted at each level of `model`, for "unknown field" messages."""
    fields: dict[str, list[str]] = {"": []}
    for name, info in model.model_fields.items():
        if name in UNSUPPORTED_BLOCKS or name in READ_ONLY:
            continue  # accepted, but not worth listing
        fields[""].append(info.alias or name)
        annotation = info.annotation
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                fields[name] = [f.alias or n for n, f in candidate.model_fields.items()]
    return fields


def json_body(model: type[M], methods: tuple[str, ...] = ()) -> Callable[..., Awaitable[M]]:
    """A dependency: the body (JSON or form) validated as `model`, after the key and the
    zone checks of the route, which are declared before it. `_METHOD` may be POST or one
    of `methods` (5centscdn's create examples send PUT); a model that declares `_METHOD`
    itself (to act on DELETE) gets it as a field instead."""
    accepted = known_fields(model)
    own_method = any(f.alias == "_METHOD" for f in model.model_fields.values())

    async def dependency(request: Request) -> M:
        raw = await read_body(request)
        content_type = request.headers.get("content-type")
        if not raw.strip() and body.media_type(content_type) != body.FORM:
            raise BadRequest(
                "this call needs a body: a JSON object (or a form) with the fields to set"
            )
        data = body.decode(raw, content_type)  # an empty form: no fields
        if not own_method:
            body.method_of(data, methods, f"{request.method} {request.url.path}")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise BadRequest(_validation_message(exc.errors(), accepted)) from None

    dependency.__name__ = f"{model.__name__.lower()}_body"
    return dependency
