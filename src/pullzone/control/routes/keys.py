"""API keys (our extension; the admin key only): create one (its secret is in that answer
and nowhere else, ever), list them, revoke one.

Decisions where the contract is silent:

- `name` is required (it is what `GET /v2/keys` and `pullzone keys list` show).
- `zones`: left out or null, every zone (present and future); otherwise a non-empty list
  of ids of zones that exist now. `[]` is a 400: it never widens into every zone.
- The list shows every key, the admin key and revoked ones included (`revoked_at` set), so
  the key id in a purge history can always be told apart.
- Revoking the admin key is a 400 (restart `serve` with another `PULLZONE_API_KEY`); an
  unknown or already revoked id is a 404. Revocation is immediate: the key's next call is
  a 401.
- The create answer carries `Cache-Control: no-store`: the secret stays out of caches.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from pullzone.bus.events import CreateKey, RevokeKey
from pullzone.control import keys
from pullzone.control.deps import Ctl, admin_for, json_body
from pullzone.control.errors import BadRequest, NotFound
from pullzone.control.keys import ADMIN_KEY_ID, Principal
from pullzone.control.openapi import errors, request_body
from pullzone.control.schemas import Done, KeyCreate, KeyCreated, KeyList, short
from pullzone.control.store import now

router = APIRouter(prefix="/keys", tags=["keys"])

KeyAdmin = Annotated[Principal, Depends(admin_for("manage API keys"))]
NewKey = Annotated[KeyCreate, Depends(json_body(KeyCreate))]
KeyId = Annotated[
    str,
    Path(
        description="The key's id (from `GET /v2/keys`), not the key itself. Never `admin`: "
        "the admin key is replaced, not revoked (400).",
        json_schema_extra={"not": {"const": ADMIN_KEY_ID}},
    ),
]

MAX_MISSING_SHOWN = 10


def _missing_zones(ctl: Ctl, zone_ids: list[int]) -> str | None:
    """The 400 message when some of `zone_ids` name no zone, else None."""
    missing = [zone_id for zone_id in zone_ids if ctl.zones.get(zone_id) is None]
    if not missing:
        return None
    shown = ", ".join(map(str, missing[:MAX_MISSING_SHOWN]))
    more = len(missing) - MAX_MISSING_SHOWN
    if more > 0:
        shown += f" and {more} more"
    zones = "zone" if len(missing) == 1 else "zones"
    return f"zones: no {zones} {shown}; list ids from GET /v2/zones/http/pull"


@router.post(
    "",
    response_model=KeyCreated,
    summary="Create an API key",
    description="Admin key only. `zones` limits the key to those zones (left out or null: "
    "every zone); `purge_only` lets it read and purge, never change or delete. The answer's "
    "`secret` is the key: it is stored hashed and never shown again.",
    responses=errors(400, 401, 403, 413, 415),
    openapi_extra=request_body(KeyCreate),
)
async def create_key(_: KeyAdmin, body: NewKey, ctl: Ctl, response: Response) -> dict[str, Any]:
    if body.zones is not None and (problem := _missing_zones(ctl, body.zones)):
        raise BadRequest(problem)
    secret, record = keys.new_key(body.name, zones=body.zones, purge_only=body.purge_only)
    await ctl.log.commit(0, CreateKey(record))
    info = keys.get_key(ctl.conn, record.id)
    assert info is not None
    response.headers["Cache-Control"] = "no-store"
    return {"result": "success", "message": "Key Created", "key": info.to_api(), "secret": secret}


@router.get(
    "",
    response_model=KeyList,
    summary="List API keys",
    description="Admin key only. Every key, oldest first, the admin key and revoked keys "
    "included; never a secret or a hash.",
    responses=errors(401, 403),
)
async def list_keys(_: KeyAdmin, ctl: Ctl) -> dict[str, Any]:
    return {"result": "success", "keys": [key.to_api() for key in keys.list_keys(ctl.conn)]}


@router.delete(
    "/{keyid}",
    response_model=Done,
    summary="Revoke an API key",
    description="Admin key only. The key's next call is refused (401). The admin key is "
    "replaced by restarting `pullzone serve` with another PULLZONE_API_KEY, not revoked.",
    responses=errors(400, 401, 403, 404),
)
async def revoke_key(_: KeyAdmin, keyid: KeyId, ctl: Ctl) -> dict[str, Any]:
    if keyid == ADMIN_KEY_ID:
        raise BadRequest(
            "the admin key cannot be revoked: restart `pullzone serve` with another "
            "PULLZONE_API_KEY to replace it"
        )
    found = keys.get_key(ctl.conn, keyid)
    if found is None:
        raise NotFound(f"no API key with id {short(keyid)}: see GET /v2/keys for the ids")
    if found.revoked_at is not None:
        raise NotFound(f"API key {found.id} is already revoked (since {found.revoked_at})")
    await ctl.log.commit(0, RevokeKey(found.id, now()))
    ctl.limiter.forget(found.id)
    return {"result": "success", "message": "Key Revoked"}
