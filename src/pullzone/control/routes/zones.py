"""HTTP pull zones (docs/zones.md): list, create, show, update, update one block (cache,
ssl, edge, securetoken, …), delete. Each write is an event committed to the node's log
(`ctl.log`), applied before the answer is sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from pullzone.bus.events import CreateZone, DeleteZone, PutCertificate, PutZone
from pullzone.certs.check import check_name, check_upload
from pullzone.control import certs
from pullzone.control.block_schemas import BLOCK_INPUTS, BlockIn
from pullzone.control.deps import (
    Caller,
    Control,
    Ctl,
    control,
    json_body,
    zone_creator,
    zone_for,
)
from pullzone.control.errors import BadRequest, Forbidden
from pullzone.control.keys import Principal
from pullzone.control.log import Committed
from pullzone.control.openapi import errors, request_body
from pullzone.control.schemas import (
    CacheUpdate,
    Done,
    SslUpdate,
    ZoneAnswer,
    ZoneChanged,
    ZoneList,
)
from pullzone.control.store import now
from pullzone.control.zone_schemas import (
    ZoneCreate,
    ZoneUpdate,
    refuse_geoblock_without_db,
    refuse_not_applied,
)
from pullzone.zones.model import Zone

router = APIRouter(prefix="/zones/http/pull", tags=["zones"])
every_zone = APIRouter(prefix="/zones", tags=["zones"])

Creator = Annotated[Principal, Depends(zone_creator)]
Readable = Annotated[Zone, Depends(zone_for("read"))]
Writable = Annotated[Zone, Depends(zone_for("update"))]
Deletable = Annotated[Zone, Depends(zone_for("delete"))]
NewZone = Annotated[ZoneCreate, Depends(json_body(ZoneCreate))]
Changes = Annotated[ZoneUpdate, Depends(json_body(ZoneUpdate))]
CacheChanges = Annotated[CacheUpdate, Depends(json_body(CacheUpdate))]
SslChanges = Annotated[SslUpdate, Depends(json_body(SslUpdate))]

_ZONE_ERRORS = errors(400, 401, 403, 404)
_BODY_ERRORS = errors(400, 401, 403, 404, 413, 415)


@router.get(
    "",
    response_model=ZoneList,
    summary="List HTTP pull zones",
    description="Every zone the key may read, oldest first.",
    responses=errors(401),
)
async def list_zones(principal: Caller, ctl: Ctl) -> dict[str, Any]:
    zones = [ctl.zone_api(z) for z in ctl.zones.list() if principal.may("read", z.id)]
    return {"result": "success", "zones": zones}


@every_zone.get(
    "",
    response_model=ZoneList,
    summary="List every zone",
    description="5centscdn's list of zones of every type: pullzone has HTTP pull zones "
    "only, so this is the list of `GET /v2/zones/http/pull`.",
    responses=errors(401),
)
async def list_every_zone(principal: Caller, ctl: Ctl) -> dict[str, Any]:
    return await list_zones(principal, ctl)


@router.post(
    "/new",
    response_model=ZoneChanged,
    summary="Create an HTTP pull zone",
    description="The admin key, or a key for every zone with the create permission. "
    "`alias` (or `name`) and `origin` are required; `name` defaults to the alias. A zone "
    'created without a `cache` block gets `{"cache": "4h", "expiry": "", "querystring": '
    '"Y", "cachecontrol": "Y", "usestale": "Y", "revalidate": "Y"}`.',
    responses=errors(400, 401, 403, 413, 415),
    openapi_extra=request_body(ZoneCreate),
)
async def create_zone(_: Creator, body: NewZone, ctl: Ctl) -> dict[str, Any]:
    draft = body.draft()
    refuse_not_applied(draft)
    refuse_geoblock_without_db(draft, None, ctl.settings.geoip_db)
    certs.check_zone_ssl(ctl.conn, draft, ctl.settings.acme_directory)
    proposal = CreateZone(draft, derive_alias=body.alias is None, stamp=now())
    committed = await ctl.log.commit(0, proposal)
    return {"result": "success", "message": "Zone Created", "zone": _zone_of(ctl, committed)}


@router.get(
    "/{zoneid}",
    response_model=ZoneAnswer,
    summary="Show an HTTP pull zone",
    responses=_ZONE_ERRORS,
)
async def show_zone(zone: Readable, ctl: Ctl) -> dict[str, Any]:
    return {"result": "success", "zone": ctl.zone_api(zone)}


@router.post(
    "/{zoneid}",
    response_model=ZoneChanged | Done,
    summary="Update an HTTP pull zone",
    description="Only the fields sent change; blocks merge field-wise. The zone's own "
    "answer may be sent back whole (read-only fields unchanged). A body that changes "
    'nothing changes nothing (same `updated_at`). `"_METHOD": "DELETE"` deletes the zone.',
    responses=_BODY_ERRORS,
    openapi_extra=request_body(ZoneUpdate),
)
async def update_zone(zone: Writable, body: Changes, principal: Caller, ctl: Ctl) -> dict[str, Any]:
    if body.deletes:
        body.apply_to(zone, None)  # refuses other fields beside _METHOD
        if not principal.may("delete", zone.id):
            raise Forbidden(f"this API key may not delete zone {zone.id}")
        return await _delete(ctl, zone)
    current = ctl.zone_api(zone)
    return await _update(ctl, zone, lambda zone: body.apply_to(zone, current))


@router.post(
    "/{zoneid}/cache",
    response_model=ZoneChanged,
    summary="Update the cache block of an HTTP pull zone",
    description='The cache block\'s fields at the top level (`{"cache": "1h", '
    '"querystring": "N"}`); the block wrapped as `{"cache": {…}}` is accepted too. '
    "Fields left out keep their value.",
    responses=_BODY_ERRORS,
    openapi_extra=request_body(CacheUpdate),
)
async def update_cache(zone: Writable, body: CacheChanges, ctl: Ctl) -> dict[str, Any]:
    return await _update(
        ctl, zone, lambda current: current.with_changes(cache=body.apply_to(current.cache))
    )


@router.post(
    "/{zoneid}/ssl",
    response_model=ZoneChanged,
    summary="Update the ssl block of an HTTP pull zone",
    description="The ssl block's fields at the top level (`enabled`, `http2`, `redirect`, "
    "`mode`, `certid`); fields left out keep their value. `crt` and `key` (and `cabundle`) "
    "inline are checked as an upload, stored as an account certificate named `name` (else "
    "the zone's alias) and set as the zone's `certid`.",
    responses=_BODY_ERRORS,
    openapi_extra=request_body(SslUpdate),
)
async def update_ssl(zone: Writable, body: SslChanges, ctl: Ctl) -> dict[str, Any]:
    ssl = body.apply_to(zone.ssl)  # a changed read-only field is refused before any store
    if body.inline:
        if body.certid:
            raise BadRequest("certid and crt: give one of them, not both")
        checked = check_upload(body.crt, body.key, body.cabundle)
        name = check_name(body.name) or zone.alias
        committed = await ctl.log.commit(0, PutCertificate(checked.certificate(0, name, now())))
        ssl = replace(ssl, certid=committed.seq)  # a new certificate's id: its event's seq
    elif body.name:
        raise BadRequest("name: names an inline certificate; send it with crt and key")
    return await _update(ctl, zone, lambda current: current.with_changes(ssl=ssl))


async def _update(ctl: Control, zone: Zone, change: Callable[[Zone], Zone]) -> dict[str, Any]:
    """Both update routes: apply `change`, commit the changed zone, answer it. A change
    that changes nothing commits nothing (the zone keeps its `updated_at`)."""
    changed = change(zone).with_changes(
        id=zone.id, created_at=zone.created_at, updated_at=zone.updated_at
    )
    answer = ctl.zone_api(zone)
    if changed != zone:
        refuse_not_applied(changed)
        refuse_geoblock_without_db(changed, zone, ctl.settings.geoip_db)
    if changed.ssl != zone.ssl:
        certs.check_zone_ssl(ctl.conn, changed, ctl.settings.acme_directory)
    if changed != zone:
        proposal = PutZone(changed.with_changes(updated_at=now()))
        answer = _zone_of(ctl, await ctl.log.commit(zone.id, proposal))
    return {"result": "success", "message": "Zone updated successfully", "zone": answer}


def _zone_of(ctl: Control, committed: Committed) -> dict[str, Any]:
    """The zone a committed ZONE_PUT stored, as the API shows it."""
    assert committed.event is not None
    return ctl.zone_api(PutZone.from_payload(committed.event.payload).zone)


@router.delete(
    "/{zoneid}",
    response_model=Done,
    summary="Delete an HTTP pull zone",
    description="Deletes the zone; its cached objects become unreachable at once and "
    "their bytes are reclaimed.",
    responses=_ZONE_ERRORS,
)
async def delete_zone(zone: Deletable, ctl: Ctl) -> dict[str, Any]:
    return await _delete(ctl, zone)


async def _delete(ctl: Control, zone: Zone) -> dict[str, Any]:
    await ctl.log.commit(zone.id, DeleteZone())
    return {"result": "success", "message": "Zone Deleted"}


_WRITABLE = Depends(zone_for("update"))
_CONTROL = Depends(control)


def _block_route(name: str, model: type[BlockIn]) -> None:
    """`POST …/{zoneid}/{name}`: one block's fields, merged into the zone's block."""

    block_body = Depends(json_body(model))

    async def update_block(
        zone: Zone = _WRITABLE, body: BlockIn = block_body, ctl: Control = _CONTROL
    ) -> dict[str, Any]:
        return await _update(
            ctl,
            zone,
            lambda current: current.with_changes(
                **{name: body.apply_to(getattr(current, name), name)}
            ),
        )

    update_block.__name__ = f"update_{name}"
    router.add_api_route(
        f"/{{zoneid}}/{name}",
        update_block,
        methods=["POST"],
        response_model=ZoneChanged,
        summary=f"Update the {name} block of an HTTP pull zone",
        description=f"The {name} block's fields at the top level (or wrapped as "
        f'`{{"{name}": {{…}}}}`); fields left out keep their value (docs/zones.md, Blocks).',
        responses=_BODY_ERRORS,
        openapi_extra=request_body(model),
    )


for _name, _model in BLOCK_INPUTS.items():
    _block_route(_name, _model)
