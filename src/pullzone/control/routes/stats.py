"""The node's figures (our extensions): `GET /v2/stats` for the dashboard (in a cluster,
every edge's: server/stats_exchange.py), `GET /metrics` for Prometheus (this node's
only; the admin key, as X-API-Key or `Authorization: Bearer KEY`, which is what
Prometheus' `authorization: {credentials: KEY}` sends)."""

from __future__ import annotations

import gzip
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pullzone.control.deps import Caller, Ctl, check_key
from pullzone.control.errors import BadRequest, Forbidden, NotFound, Unauthorized
from pullzone.control.openapi import errors
from pullzone.control.schemas import MAX_ZONE_ID, Stats
from pullzone.control.stats_query import BadSpan, StatsQuery, span_of
from pullzone.control.stats_report import LocalFigures, iso, render, total

router = APIRouter(tags=["stats"])

GZIP_FROM = 16 * 1024  # bytes from which a stats answer is gzip'd for a client accepting it


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (RFC 9110 §12.5.3): named, else
    `*`, with a q above 0."""
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            weights.setdefault(coding, float(q))
        except ValueError:
            weights.setdefault(coding, 0.0)
    return weights.get("gzip", weights.get("*", 0.0)) > 0


def _answer(request: Request, body: dict[str, Any]) -> Response:
    """`body` as JSON, encoded here rather than through the route's `response_model`
    (kept for the OpenAPI description): validating a cluster's answer of 5,000 zones
    (5 MB) against it took about as long as making it (bench/README.md, Cluster stats at
    scale). Gzip'd (level 1: ~20 times smaller, ~2 ms per MB) once it is big, for a
    client that accepts it."""
    data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    headers = {"Vary": "Accept-Encoding"}
    if len(data) >= GZIP_FROM and accepts_gzip(request.headers.get("accept-encoding", "")):
        data = gzip.compress(data, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type="application/json", headers=headers)


@router.get(
    "/v2/stats",
    response_model=Stats,
    response_model_exclude_unset=True,
    summary="Traffic and cache figures of this node, or of the cluster",
    description="Per zone the key may read: requests, hit ratio (HIT and STALE answers "
    "over all), bytes served, origin requests, and what the zone holds in the cache; "
    "requests per minute by cache status over the last hour (`series`), of every zone "
    "listed or of `zone`, counted since the node started (`since`); and the history "
    "between `from` and `to` (`history`: kept across restarts, in minutes for a span of "
    "up to 24 hours within the last 24 hours, else in hours, for up to 7 days). In a "
    "cluster, the figures are the sum of every edge's, each edge's own are in `nodes`, "
    "and edges that did not answer within a second, or were not heard from for more than "
    "15 s (for up to 24 hours, unless they stopped cleanly), are listed in `unreachable`, "
    "with when each was last heard from in `last_heard`.",
    responses=errors(400, 401, 403, 404),
)
async def stats(
    request: Request,
    principal: Caller,
    ctl: Ctl,
    zone: Annotated[int | None, Query(ge=1, le=MAX_ZONE_ID, description="Only this zone.")] = None,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description="Start of the history: unix seconds or ISO 8601 (UTC without an "
            "offset); default: an hour before `to`.",
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(description="End of the history (not included), as `from`; default: now."),
    ] = None,
) -> Response:
    now = time.time()
    try:
        span = span_of(from_, to, now)
    except BadSpan as exc:
        raise BadRequest(str(exc)) from None
    zones = [z for z in ctl.zones.list() if principal.may("read", z.id)]
    if zone is not None:
        if not principal.may("read", zone):
            raise Forbidden(f"this API key may not read zone {zone}")
        zones = [z for z in zones if z.id == zone]
        if not zones:
            raise NotFound(f"zone {zone} not found")
    query = StatsQuery(span, tuple(z.id for z in zones))
    domain = ctl.settings.edge_domain
    if ctl.cluster_stats is None:
        report = await LocalFigures(ctl.stats, ctl.recorder).report(query)
        return _answer(request, {"result": "success", **render(report, zones, domain, query, now)})
    reports, unreachable = await ctl.cluster_stats(query)
    figures = render(total(reports.values(), ctl.stats.since), zones, domain, query, now)
    answer = {
        "result": "success",
        **figures,
        "total": figures,
        "nodes": {
            node: render(report, zones, domain, query, now)
            for node, report in sorted(reports.items())
        },
        "unreachable": list(unreachable),
        "last_heard": {node: iso(at) for node, at in unreachable.items()},
    }
    return _answer(request, answer)


@router.get("/metrics", include_in_schema=False)
async def metrics(
    ctl: Ctl,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    key = (x_api_key or "").strip()
    if not key and authorization and authorization[:7].lower() == "bearer ":
        key = authorization[7:].strip()
    if not key:
        raise Unauthorized("send the admin key as X-API-Key or Authorization: Bearer KEY")
    principal = check_key(ctl, key)
    if not principal.admin:
        raise Forbidden("only the admin key may read /metrics")
    return Response(generate_latest(ctl.metrics.registry), media_type=CONTENT_TYPE_LATEST)
