"""API keys as 5centscdn's `/v2/account/api`: list, create, show, update, delete. These
are the keys of `/v2/keys` (control/keys.py), seen through 5centscdn's shape: integer ids,
`description`, and `permission` (pullzone.permissions) instead of `purge_only`. Each change
is a KEY_CREATE, KEY_UPDATE or KEY_REVOKE event, so every node of a cluster agrees.

Decisions where 5centscdn's reference is silent:

- Only the admin key manages keys, as for `/v2/keys`.
- The key itself is in the answer that creates it, as `hash` (the field 5centscdn's key
  records hold it in), and nowhere else, ever: pullzone stores its SHA-256 only. So
  records have no `hash`; `serviceid` is the installation's, as in zone answers; they carry
  `zones` (the zones a key from `/v2/keys` is limited to) and `created_at`.
- The admin key is listed (id 1, every permission) so that a client sees every key that
  works; updating or deleting it is a 400 (restart `serve` with another PULLZONE_API_KEY).
- `description` may be left out (""); on update, fields left out keep their value.
- `permission[]` may also be sent as `permission`; unknown permissions, an empty list,
  a name over 255 characters: 400. Deleted keys are gone: their id is a 404.
- `_METHOD`: "PUT" (5centscdn's create examples) or "POST" is accepted on create, "POST"
  or "PUT" on update; `"_METHOD": "DELETE"` on `POST /v2/account/api/{id}` deletes. A
  `DELETE` ignores its body (5centscdn's example sends `{"_METHOD": "DELETE"}`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from pullzone.bus.events import CreateKey, RevokeKey, UpdateKey
from pullzone.control import keys
from pullzone.control.deps import Control, Ctl, admin_for, json_body, path_id
from pullzone.control.errors import BadRequest, NotFound
from pullzone.control.keys import ADMIN_KEY_ID, KeyInfo, Principal
from pullzone.control.openapi import errors, request_body
from pullzone.control.schemas import (
    AccountKeyAnswer,
    AccountKeyCreate,
    AccountKeyCreated,
    AccountKeyList,
    AccountKeyUpdate,
    Done,
)
from pullzone.control.store import now
from pullzone.zones.model import service_id

router = APIRouter(prefix="/account/api", tags=["API keys"])

KeyAdmin = Annotated[Principal, Depends(admin_for("manage API keys"))]
NewKey = Annotated[AccountKeyCreate, Depends(json_body(AccountKeyCreate))]
Changes = Annotated[AccountKeyUpdate, Depends(json_body(AccountKeyUpdate))]

_ID_ERRORS = errors(400, 401, 403, 404)
_ADMIN_IS_FIXED = (
    "the admin key cannot be changed or deleted: it may do everything; restart "
    "`pullzone serve` with another PULLZONE_API_KEY to replace it"
)


async def apikey_id(
    request: Request,
    apikeyid: Annotated[
        str,
        Path(
            description="The key's id (a positive integer, from `GET /v2/account/api`); "
            "the admin key's is 1.",
            json_schema_extra={"type": "integer", "minimum": 1, "maximum": 16**12 - 1},
        ),
    ],
) -> int:
    """The `{apikeyid}` of the path; anything but a positive integer is a 400."""
    return path_id(request, apikeyid, "API key id")


ApiKeyId = Annotated[int, Depends(apikey_id)]


def _live(ctl: Control, number: int) -> KeyInfo:
    """The live key with this id (404 when there is none, or it was deleted)."""
    key_id = keys.id_of(number)
    found = None if key_id is None else keys.get_key(ctl.conn, key_id)
    if found is None or found.revoked_at is not None:
        raise NotFound(f"no API key with id {number}: GET /v2/account/api lists them")
    return found


def _changeable(ctl: Control, number: int) -> KeyInfo:
    found = _live(ctl, number)
    if found.id == ADMIN_KEY_ID:
        raise BadRequest(_ADMIN_IS_FIXED)
    return found


@router.get(
    "",
    response_model=AccountKeyList,
    summary="List API keys",
    description="Admin key only. Every live key, oldest first, the admin key (id 1) "
    "included; never a key's secret or hash.",
    responses=errors(401, 403),
)
async def list_keys(_: KeyAdmin, ctl: Ctl) -> dict[str, Any]:
    listed = [
        key.to_account_api(service_id(ctl.settings.edge_domain))
        for key in keys.list_keys(ctl.conn)
        if key.revoked_at is None and key.number is not None
    ]
    return {"result": "success", "apikeys": listed}


@router.post(
    "/new",
    response_model=AccountKeyCreated,
    summary="Create an API key",
    description="Admin key only. `name` and `permission[]` are required. The key is for "
    "every zone; `hash` in the answer is the key itself (send it as X-API-Key): it is "
    "stored hashed and never shown again.",
    responses=errors(400, 401, 403, 413, 415),
    openapi_extra=request_body(AccountKeyCreate),
)
async def create_key(_: KeyAdmin, body: NewKey, ctl: Ctl, response: Response) -> dict[str, Any]:
    secret, record = keys.new_key(
        body.name, description=body.description, permissions=tuple(body.permission)
    )
    await ctl.log.commit(0, CreateKey(record))
    number = keys.number_of(record.id)
    assert number is not None  # new_key makes ids that have one
    response.headers["Cache-Control"] = "no-store"
    return {"result": "success", "message": "API Key Created", "id": number, "hash": secret}


@router.get(
    "/{apikeyid}",
    response_model=AccountKeyAnswer,
    summary="Show an API key",
    description="Admin key only. Never the key's secret or hash.",
    responses=_ID_ERRORS,
)
async def show_key(_: KeyAdmin, apikeyid: ApiKeyId, ctl: Ctl) -> dict[str, Any]:
    return {
        "result": "success",
        "apikey": _live(ctl, apikeyid).to_account_api(service_id(ctl.settings.edge_domain)),
    }


@router.post(
    "/{apikeyid}",
    response_model=Done,
    summary="Update an API key",
    description="Admin key only. `name`, `description`, `permission[]`: the ones sent "
    'replace the key\'s, at once for its next call. `"_METHOD": "DELETE"` deletes the key '
    "instead. The admin key (id 1) is a 400.",
    responses=errors(400, 401, 403, 404, 413, 415),
    openapi_extra=request_body(AccountKeyUpdate),
)
async def update_key(_: KeyAdmin, apikeyid: ApiKeyId, body: Changes, ctl: Ctl) -> dict[str, Any]:
    found = _changeable(ctl, apikeyid)
    if body.method_override == "DELETE":
        return await _delete(ctl, found)
    if body.name is None and body.description is None and body.permission is None:
        raise BadRequest("nothing to change: send name, description or permission[]")
    update = UpdateKey(
        found.id,
        found.name if body.name is None else body.name,
        found.description if body.description is None else body.description,
        found.granted() if body.permission is None else tuple(body.permission),
    )
    await ctl.log.commit(0, update)
    return {"result": "success", "message": "API Key Updated"}


@router.delete(
    "/{apikeyid}",
    response_model=Done,
    summary="Delete an API key",
    description="Admin key only. The key's next call is refused (401). The admin key "
    "(id 1) is a 400. A body is ignored.",
    responses=_ID_ERRORS,
)
async def delete_key(_: KeyAdmin, apikeyid: ApiKeyId, ctl: Ctl) -> dict[str, Any]:
    return await _delete(ctl, _changeable(ctl, apikeyid))


async def _delete(ctl: Control, found: KeyInfo) -> dict[str, Any]:
    await ctl.log.commit(0, RevokeKey(found.id, now()))
    ctl.limiter.forget(found.id)
    return {"result": "success", "message": "API Key Deleted."}
