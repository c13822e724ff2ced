"""`POST /v2/zones/http/pull/{zoneid}/prefetch` (pullzone's extension): store objects on
every edge before visitors ask for them (server/prefetcher.py)."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from pullzone.bus.events import Prefetch
from pullzone.control.deps import Caller, Ctl, body_object, zone_for
from pullzone.control.openapi import FORM, errors, form_of
from pullzone.control.schemas import PrefetchAnswer
from pullzone.limits import MAX_PREFETCH_FILES, MAX_PURGE_PATH
from pullzone.server.prefetcher import PREFETCH_DEADLINE
from pullzone.zones.model import Zone
from pullzone.zones.prefetch import plan_prefetch

router = APIRouter(prefix="/zones/http/pull", tags=["purge"])
audit = logging.getLogger("pullzone.audit")

# Prefetching stores content a purge would remove: the same permission.
Prefetchable = Annotated[Zone, Depends(zone_for("purge"))]

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["files"],
    "properties": {
        "files": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_PREFETCH_FILES,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_PURGE_PATH},
            "description": "Paths (`/videos/file.mp4`, with a query string when the zone "
            "keys on it), or http(s) URLs on the zone's hostnames or its origin's host, as "
            "for a purge; no `*`.",
            "example": ["/index.html", "/css/site.css"],
        }
    },
}
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _SCHEMA}, FORM: {"schema": form_of(_SCHEMA)}},
    }
}


@router.post(
    "/{zoneid}/prefetch",
    response_model=PrefetchAnswer,
    response_model_exclude_none=True,
    summary="Prefetch objects of a HTTP pull zone to every edge",
    description="Each edge fetches the objects through its own cache (one origin request "
    "per object and edge, none for what it holds fresh) and stores them as it would for a "
    f"visitor. Answered once they are stored, or after {PREFETCH_DEADLINE:.0f} s; in a "
    "cluster, `pending` lists the edges that had not confirmed by then. A purge issued "
    "later is applied after the prefetch on every edge (pullzone's extension).",
    responses=errors(400, 401, 403, 404, 413, 415, 503),
    openapi_extra=_BODY,
)
async def prefetch(
    zone: Prefetchable, principal: Caller, ctl: Ctl, request: Request
) -> dict[str, Any]:
    edge_domain = ctl.settings.edge_domain
    targets = plan_prefetch(await body_object(request), zone, edge_domain)
    committed = await ctl.log.commit(
        zone.id, Prefetch(zone.fqdn(edge_domain), targets), confirm_within=PREFETCH_DEADLINE + 2
    )
    answer: dict[str, Any] = {
        "result": "success",
        "message": "Zone Prefetched",
        "id": committed.seq,
        "files": len(targets),
    }
    if committed.pending:
        answer["pending"] = list(committed.pending)
    audit.info(
        "%s",
        json.dumps(
            {
                "event": "prefetch",
                "id": committed.seq,
                "zone": zone.id,
                "key": principal.key_id,
                "files": list(targets),
                "pending": list(committed.pending),
            },
            separators=(",", ":"),
        ),
    )
    return answer
