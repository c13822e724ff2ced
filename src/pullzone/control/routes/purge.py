"""Purge routes (README, Purge): the seed's `POST /v2/zones/http/pull/{zoneid}/purge` and
our `GET /v2/zones/http/pull/{zoneid}/purges` history."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from pullzone.bus.events import PurgeRequest
from pullzone.control import body as bodies
from pullzone.control import history
from pullzone.control.deps import Caller, Ctl, body_object, zone_for
from pullzone.control.openapi import FORM, errors, form_of
from pullzone.control.schemas import PurgeAnswer, PurgeHistory
from pullzone.limits import MAX_PURGE_FILES, MAX_PURGE_PATH, MAX_PURGE_TAGS, MAX_TAG
from pullzone.zones.model import Zone
from pullzone.zones.purge import check_fields, parse_delete, plan_purge

router = APIRouter(prefix="/zones/http/pull", tags=["purge"])
audit = logging.getLogger("pullzone.audit")  # one JSON line per answered purge

Purgeable = Annotated[Zone, Depends(zone_for("purge"))]
Readable = Annotated[Zone, Depends(zone_for("read"))]

_PURGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "Omit the body (or send `{}`) to purge the whole zone.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "files": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_PURGE_FILES,
                            "items": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_PURGE_PATH,
                            },
                            "description": "Paths (`/videos/file.mp4`), or http(s) URLs on "
                            "the zone's hostnames or on its origin's host (the origin URL's "
                            "host or the zone's hostHeader; such a URL is read relative to "
                            "the origin's path, and one outside it is a 400). Without a query "
                            "string every variant of the path; with one, that variant. A `*` "
                            "is a glob matching any characters, `/` included (`*.js`, "
                            "`/img/*/thumb.png`), at most 16 per file, `**` refused, never in "
                            "a host; a trailing `*` is a prefix. A query string after a glob "
                            "or prefix purges that variant of every matching path.",
                            "example": ["/videos/file.mp4", "/images/*", "*.js"],
                        },
                        "tags": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_PURGE_TAGS,
                            "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG},
                            "description": "Purge objects whose origin response carried these "
                            "tags in Surrogate-Key or Cache-Tag.",
                        },
                    },
                }
            }
        },
    }
}
# The same fields as a form (`files[]=/a&files[]=/b`), as 5centscdn's plugin sends them.
_PURGE_CONTENT = _PURGE_BODY["requestBody"]["content"]
_PURGE_CONTENT[FORM] = form_of(_PURGE_CONTENT["application/json"]["schema"])


@router.post(
    "/{zoneid}/purge",
    response_model=PurgeAnswer,
    response_model_exclude_none=True,
    summary="Purge cache of a HTTP pull zone",
    description="Soft purge by default (stale at once, revalidated on the next request); "
    "`delete=true` removes the objects. When the answer comes, no edge worker serves the "
    "purged content as fresh; in a cluster, `pending` lists the edges that had not "
    "confirmed it in time (they apply it before they serve again). 503: the cluster's "
    "bus is unreachable and nothing was purged.",
    responses=errors(400, 401, 403, 404, 413, 415, 503),
    openapi_extra=_PURGE_BODY,
)
async def purge(
    zone: Purgeable,
    principal: Caller,
    ctl: Ctl,
    request: Request,
    delete: Annotated[
        str | None,
        Query(
            description="true/false/1/0/yes/no: remove the objects instead of marking them stale",
            examples=["true"],
        ),
    ] = None,
) -> dict[str, Any]:
    hard = parse_delete(delete)
    data = await body_object(request)
    # 5centscdn's WordPress plugin purges with `_METHOD=DELETE` in a form body.
    bodies.method_of(data, ("DELETE",), f"POST {request.url.path}")
    body = check_fields(data)
    plan = plan_purge(body, zone, ctl.settings.edge_domain, hard)
    started = time.perf_counter()
    committed = await ctl.log.commit(zone.id, PurgeRequest(plan, principal.key_id))
    ctl.metrics.purged(zone.id, plan, started)
    answer: dict[str, Any] = {"result": "success", "message": "Zone Purged", "id": committed.seq}
    matched = committed.matched
    if matched is not None and matched >= 0:
        history.set_matched(ctl.conn, committed.seq, matched)
        answer["purged"] = matched
    if committed.pending:
        answer["pending"] = list(committed.pending)
    audit.info(
        "%s",
        json.dumps(
            {
                "event": "purge",
                "id": committed.seq,
                "zone": zone.id,
                "key": principal.key_id,
                **plan.to_payload(),
                "matched": matched if matched is not None and matched >= 0 else None,
                "pending": list(committed.pending),
            },
            separators=(",", ":"),
        ),
    )
    return answer


@router.get(
    "/{zoneid}/purges",
    response_model=PurgeHistory,
    summary="Purge history of a HTTP pull zone",
    description="The zone's last 100 purges, newest first (pullzone's extension).",
    responses=errors(400, 401, 403, 404),
)
async def purges(zone: Readable, ctl: Ctl) -> dict[str, Any]:
    return {"result": "success", "purges": history.listing(ctl.conn, zone.id)}
