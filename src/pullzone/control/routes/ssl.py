"""Account certificates, as 5centscdn's `/v2/account/ssl`: upload, list, show, update,
delete. Each change is a CERT_PUT or CERT_DELETE event committed to the node's log, so it
reaches every node; answers are read back from control.db once the event is applied.

Decisions where 5centscdn's reference is silent:

- Every route needs a key for the whole account: the admin key, or a key for every zone
  that is not purge-only (403 otherwise). Certificates are shared by zones.
- `name` may be left out: the certificate's domain and expiry date.
- `installs` is how many zones use the certificate (their `ssl.certid`); `zones` (ours)
  lists their ids.
- `_METHOD` in the body: "PUT" (5centscdn's create examples) or "POST" is accepted and
  ignored; `"_METHOD": "DELETE"` on `POST /v2/account/ssl/{id}` deletes. This API has no
  other `_METHOD` mechanism: these routes read it themselves.
- Deleting a certificate a zone uses is a 409 naming the zones.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from pullzone.bus.events import DeleteCertificate, PutCertificate
from pullzone.certs.check import check_name, check_upload
from pullzone.certs.model import Certificate
from pullzone.control import certs
from pullzone.control.deps import Control, Ctl, account_key, json_body, path_id
from pullzone.control.errors import ApiError, BadRequest, NotFound
from pullzone.control.keys import Principal
from pullzone.control.openapi import errors, request_body
from pullzone.control.schemas import (
    MAX_ZONE_ID,
    CertAnswer,
    CertChanged,
    CertList,
    CertUpdate,
    CertUpload,
    Done,
)
from pullzone.control.store import now

router = APIRouter(prefix="/account/ssl", tags=["certificates"])

Account = Annotated[Principal, Depends(account_key)]
Upload = Annotated[CertUpload, Depends(json_body(CertUpload))]
Changes = Annotated[CertUpdate, Depends(json_body(CertUpdate))]

_ID_ERRORS = errors(400, 401, 403, 404)


async def cert_id(
    request: Request,
    certid: Annotated[
        str,
        Path(
            description="Certificate ID (a positive integer).",
            json_schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_ZONE_ID},
        ),
    ],
) -> int:
    """The `{certid}` of the path; anything but a positive integer is a 400."""
    return path_id(request, certid, "certificate id")


CertId = Annotated[int, Depends(cert_id)]


def _existing(ctl: Control, certid: int) -> Certificate:
    cert = certs.get(ctl.conn, certid)
    if cert is None:
        raise NotFound(f"certificate {certid} not found; GET /v2/account/ssl lists them")
    return cert


def _answer(ctl: Control, cert: Certificate) -> dict[str, Any]:
    return certs.to_api(cert, certs.users(ctl.zones.list(), cert.id))


@router.post(
    "/new",
    response_model=CertChanged,
    summary="Upload a certificate",
    description="`crt` and `key` (PEM) are required, `cabundle` optional. The key must be the "
    "certificate's, the certificate valid now, the chain verify; the answer never carries "
    "the key.",
    responses=errors(400, 401, 403, 413, 415),
    openapi_extra=request_body(CertUpload),
)
async def upload(_: Account, body: Upload, ctl: Ctl) -> dict[str, Any]:
    checked = check_upload(body.crt, body.key, body.cabundle)
    name = check_name(body.name) or certs.default_name(checked)
    committed = await ctl.log.commit(0, PutCertificate(checked.certificate(0, name, now())))
    cert = _existing(ctl, committed.seq)  # a new certificate's id is its event's sequence
    return {
        "result": "success",
        "message": "Operation completed successfully",
        "cert": _answer(ctl, cert),
    }


@router.get(
    "",
    response_model=CertList,
    summary="List certificates",
    description="Every account certificate, oldest first; never a key.",
    responses=errors(401, 403),
)
async def list_certs(_: Account, ctl: Ctl) -> dict[str, Any]:
    zones = ctl.zones.list()
    answers = [certs.to_api(c, certs.users(zones, c.id)) for c in certs.all_certs(ctl.conn)]
    return {"result": "success", "certs": answers}


@router.get(
    "/{certid}",
    response_model=CertAnswer,
    summary="Show a certificate",
    responses=_ID_ERRORS,
)
async def show_cert(_: Account, certid: CertId, ctl: Ctl) -> dict[str, Any]:
    return {"result": "success", "cert": _answer(ctl, _existing(ctl, certid))}


@router.post(
    "/{certid}",
    response_model=CertChanged | Done,
    summary="Update a certificate",
    description="`crt` and `key` together replace the certificate (checked as an upload; "
    "`cabundle` with them), `name` renames it; zones using it serve the new one. "
    '`"_METHOD": "DELETE"` deletes it instead.',
    responses=errors(400, 401, 403, 404, 409, 413, 415),
    openapi_extra=request_body(CertUpdate),
)
async def update_cert(_: Account, certid: CertId, body: Changes, ctl: Ctl) -> dict[str, Any]:
    cert = _existing(ctl, certid)
    if body.method_override == "DELETE":
        return await _delete(ctl, cert)
    changes: dict[str, Any] = {}
    if (body.crt is None) != (body.key is None):
        raise BadRequest(
            "crt and key: send both to replace the certificate, or name alone to rename it"
        )
    if body.crt is not None and body.key is not None:
        checked = check_upload(body.crt, body.key, body.cabundle or "")
        changes = {
            "crt": checked.crt,
            "key": checked.key,
            "cabundle": checked.cabundle,
            "domain": checked.domain,
            "sans": checked.sans,
            "valid_from": checked.valid_from,
            "expiry": checked.expiry,
            "source": "upload",
        }
    elif body.cabundle is not None:
        raise BadRequest("cabundle: send it with crt and key, which it is the chain of")
    if body.name is not None:
        name = check_name(body.name)
        if not name:
            raise BadRequest("name: must not be empty")
        changes["name"] = name
    if not changes:
        raise BadRequest("nothing to change: send name, or crt and key (with cabundle)")
    changed = Certificate.from_record({**cert.to_record(), **changes, "updated_at": now()})
    await ctl.log.commit(0, PutCertificate(changed))
    return {
        "result": "success",
        "message": "Update successful",
        "cert": _answer(ctl, _existing(ctl, certid)),
    }


@router.delete(
    "/{certid}",
    response_model=Done,
    summary="Delete a certificate",
    description="Refused (409) while a zone's ssl.certid names it.",
    responses=errors(400, 401, 403, 404, 409),
)
async def delete_cert(_: Account, certid: CertId, ctl: Ctl) -> dict[str, Any]:
    return await _delete(ctl, _existing(ctl, certid))


async def _delete(ctl: Control, cert: Certificate) -> dict[str, Any]:
    using = certs.users(ctl.zones.list(), cert.id)
    if using:
        zones = ", ".join(map(str, using))
        raise ApiError(
            f"certificate {cert.id} is used by zone {zones} (ssl.certid): point those zones' "
            "ssl.certid at another certificate, or 0, first",
            status=409,
        )
    await ctl.log.commit(0, DeleteCertificate(cert.id))
    return {"result": "success", "message": "Certificate Deleted"}
