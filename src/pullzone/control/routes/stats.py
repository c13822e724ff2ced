"""The node's figures (our extensions): `GET /v2/stats` for the dashboard, `GET /metrics`
for Prometheus (the admin key, as X-API-Key or `Authorization: Bearer KEY`, which is what
Prometheus' `authorization: {credentials: KEY}` sends)."""

from __future__ import annotations

import datetime
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pullzone.control.deps import Caller, Ctl, check_key
from pullzone.control.errors import Forbidden, NotFound, Unauthorized
from pullzone.control.openapi import errors
from pullzone.control.schemas import MAX_ZONE_ID, Stats
from pullzone.control.stats import SERVED_FROM_CACHE

router = APIRouter(tags=["stats"])


@router.get(
    "/v2/stats",
    response_model=Stats,
    summary="Traffic and cache figures of this node",
    description="Per zone the key may read: requests, hit ratio (HIT and STALE answers "
    "over all), bytes served, origin requests, and what the zone holds in this node's "
    "cache; and requests per minute by cache status over the last hour (`series`), of "
    "every zone listed or of `zone`. Counted since the node started (`since`); in a "
    "cluster, each node counts its own traffic.",
    responses=errors(400, 401, 403, 404),
)
async def stats(
    principal: Caller,
    ctl: Ctl,
    zone: Annotated[int | None, Query(ge=1, le=MAX_ZONE_ID, description="Only this zone.")] = None,
) -> dict[str, Any]:
    zones = [z for z in ctl.zones.list() if principal.may("read", z.id)]
    if zone is not None:
        if not principal.may("read", zone):
            raise Forbidden(f"this API key may not read zone {zone}")
        zones = [z for z in zones if z.id == zone]
        if not zones:
            raise NotFound(f"zone {zone} not found")
    totals = ctl.stats.totals()
    cache = ctl.stats.cache_by_zone()
    rows = []
    for z in zones:
        by_status = {s: n for (zid, s), n in totals.requests.items() if zid == z.id}
        requests = sum(by_status.values())
        hits = sum(by_status.get(s, 0) for s in SERVED_FROM_CACHE)
        held = cache.get(z.id)
        rows.append(
            {
                "id": z.id,
                "name": z.name,
                "fqdn": z.fqdn(ctl.settings.edge_domain),
                "requests": requests,
                "hits": hits,
                "hit_ratio": round(hits / requests, 4) if requests else None,
                "bytes": totals.bytes.get(z.id, 0),
                "origin_requests": totals.origin[z.id].requests if z.id in totals.origin else 0,
                "cache_bytes": held.bytes if held else 0,
                "cache_objects": held.objects if held else 0,
            }
        )
    start, statuses = ctl.stats.series(totals, {z.id for z in zones}, time.time())
    since = datetime.datetime.fromtimestamp(ctl.stats.since, datetime.UTC)
    return {
        "result": "success",
        "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "zones": rows,
        "series": {"start": start, "step": 60, "statuses": statuses},
    }


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
