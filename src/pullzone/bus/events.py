"""Events: every change a node applies, in one ordered log (README, Cluster: How it works).

An `Event` is the envelope the log stores, its payload the JSON object that control.db
and the JetStream stream hold. The records below say what a payload means, one record a
kind: `to_payload` writes it with the keys, in the order, every release has written
(the stored bytes do not change), and `from_payload` reads what is stored, with the same
defaults the appliers always read it with. A payload that is not what its kind needs
raises KeyError, TypeError or ValueError, which quarantines its event (bus.local).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pullzone.certs.model import Certificate
from pullzone.permissions import Permission, normalized
from pullzone.zones.model import Zone
from pullzone.zones.plan import PURGE_KIND, PurgePlan

# What the API proposes (the stream carries these) ...
ZONE_CREATE = "zone.create"  # payload: the draft zone; its id becomes the event's sequence
KEY_CREATE = "key.create"
KEY_REVOKE = "key.revoke"
KEY_UPDATE = "key.update"  # payload: the key's new name, description and permissions
# ... and what the edge reads from a node's log (a create is stored as the ZONE_PUT it made).
ZONE_PUT = "zone.put"
ZONE_DELETE = "zone.delete"
PURGE = PURGE_KIND  # payload: zones.plan.PurgePlan
# Certificates travel like zones: the API proposes them, every node stores them, and the
# edge reads them from the node's log (the private key included: control.db is 0600).
CERT_PUT = "cert.put"  # payload: the certificate; a new one's id is the event's sequence
CERT_DELETE = "cert.delete"  # payload: {"id": …}; the event's zone_id is 0
# An ACME HTTP-01 challenge the edge answers while a certificate is being ordered
# (certs/acme.py): every edge of every node must answer it, so it travels like a zone.
ACME_CHALLENGE_PUT = "acme.challenge.put"  # payload: {"token", "key_authorization"}; zone_id 0
ACME_CHALLENGE_DELETE = "acme.challenge.delete"  # payload: {"token"}; zone_id 0
# Objects every edge fetches and stores (server/prefetcher.py); nothing changes in
# control.db, and an edge confirms it once it has them.
PREFETCH = "prefetch"  # payload: {"host", "files"}


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str
    zone_id: int
    payload: dict[str, Any]
    at: float

    @classmethod
    def of(cls, seq: int, zone_id: int, change: Payload, at: float) -> Event:
        return cls(seq, change.KIND, zone_id, change.to_payload(), at)

    def payload_json(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"))


class Payload(Protocol):
    KIND: ClassVar[str]

    def to_payload(self) -> dict[str, Any]: ...


# --- zones ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateZone:
    KIND: ClassVar[str] = ZONE_CREATE

    draft: Zone
    derive_alias: bool  # draft.alias is a base to make unique, not the alias asked for
    stamp: str  # the new zone's created_at and updated_at

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CreateZone:
        return cls(
            Zone.from_record(payload["zone"]), bool(payload["derive_alias"]), str(payload["stamp"])
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "zone": self.draft.to_record(),
            "derive_alias": self.derive_alias,
            "stamp": self.stamp,
        }


@dataclass(frozen=True, slots=True)
class PutZone:
    """The zone as it is now: proposed by an update, stored for the edge by both."""

    KIND: ClassVar[str] = ZONE_PUT

    zone: Zone

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PutZone:
        return cls(Zone.from_record(payload["zone"]))

    def to_payload(self) -> dict[str, Any]:
        return {"zone": self.zone.to_record()}


@dataclass(frozen=True, slots=True)
class DeleteZone:
    """The event's zone_id is the zone deleted; the payload is empty."""

    KIND: ClassVar[str] = ZONE_DELETE

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DeleteZone:
        return cls()

    def to_payload(self) -> dict[str, Any]:
        return {}


# --- purges --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    """A purge as the API proposes it: the plan and the key that asked (which the purge
    history keeps, and the node's log leaves out)."""

    KIND: ClassVar[str] = PURGE

    plan: PurgePlan
    key_id: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PurgeRequest:
        return cls(PurgePlan.from_payload(payload), payload["key_id"])

    def to_payload(self) -> dict[str, Any]:
        return {**self.plan.to_payload(), "key_id": self.key_id}


@dataclass(frozen=True, slots=True)
class Prefetch:
    """Objects of a zone to fetch and store on every edge: `files` are origin-form
    targets (path and query), asked of the edge under the zone's `host`."""

    KIND: ClassVar[str] = PREFETCH

    host: str
    files: tuple[str, ...]

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Prefetch:
        files = payload["files"]
        if not isinstance(payload["host"], str) or not isinstance(files, list):
            raise TypeError("a prefetch needs a host and a list of files")
        if not all(isinstance(f, str) and f.startswith("/") for f in files):
            raise ValueError("a prefetch's files are origin-form targets")
        return cls(payload["host"], tuple(files))

    def to_payload(self) -> dict[str, Any]:
        return {"host": self.host, "files": list(self.files)}


# --- API keys ------------------------------------------------------------------------


def _permissions(value: Any) -> tuple[Permission, ...]:
    if not isinstance(value, list) or not value:
        raise TypeError("a key's permissions are a non-empty list")
    return normalized(str(p) for p in value)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as stored: hashed, never the key itself.

    `description` and `permissions` came with 5centscdn's `/v2/account/api`: a record
    without them (every key `/v2/keys` makes, and every older payload) is written and read
    exactly as before, and its permissions follow from `purge_only` (pullzone.permissions).
    """

    id: str
    name: str
    key_hash: str
    zones: tuple[int, ...] | None  # None: every zone
    purge_only: bool
    created_at: str
    description: str = ""
    permissions: tuple[Permission, ...] | None = None  # None: of_legacy(purge_only)

    @classmethod
    def from_payload(cls, record: Mapping[str, Any]) -> KeyRecord:
        zones = record["zones"]
        permissions = record.get("permissions")
        return cls(
            id=record["id"],
            name=record["name"],
            key_hash=record["key_hash"],
            zones=None if zones is None else tuple(int(zone) for zone in zones),
            purge_only=bool(record["purge_only"]),
            created_at=record["created_at"],
            description=str(record.get("description", "")),
            permissions=None if permissions is None else _permissions(permissions),
        )

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "key_hash": self.key_hash,
            "zones": None if self.zones is None else list(self.zones),
            "purge_only": self.purge_only,
            "created_at": self.created_at,
        }
        if self.description:
            payload["description"] = self.description
        if self.permissions is not None:
            payload["permissions"] = list(self.permissions)
        return payload


@dataclass(frozen=True, slots=True)
class CreateKey:
    KIND: ClassVar[str] = KEY_CREATE

    key: KeyRecord

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CreateKey:
        return cls(KeyRecord.from_payload(payload["key"]))

    def to_payload(self) -> dict[str, Any]:
        return {"key": self.key.to_payload()}


@dataclass(frozen=True, slots=True)
class RevokeKey:
    KIND: ClassVar[str] = KEY_REVOKE

    id: str
    at: str  # when, as the key listing shows it

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RevokeKey:
        return cls(str(payload["id"]), str(payload["at"]))

    def to_payload(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at}


@dataclass(frozen=True, slots=True)
class UpdateKey:
    """A live key's new name, description and permissions (`POST /v2/account/api/{id}`);
    its secret, zones and creation time stay."""

    KIND: ClassVar[str] = KEY_UPDATE

    id: str
    name: str
    description: str
    permissions: tuple[Permission, ...]

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> UpdateKey:
        return cls(
            str(payload["id"]),
            str(payload["name"]),
            str(payload["description"]),
            _permissions(payload["permissions"]),
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "permissions": list(self.permissions),
        }


# --- certificates ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PutCertificate:
    """A certificate as it is now (created when its id is 0: the event's sequence becomes
    its id, as a zone's does)."""

    KIND: ClassVar[str] = CERT_PUT

    cert: Certificate

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PutCertificate:
        return cls(Certificate.from_record(payload["cert"]))

    def to_payload(self) -> dict[str, Any]:
        return {"cert": self.cert.to_record()}


@dataclass(frozen=True, slots=True)
class DeleteCertificate:
    KIND: ClassVar[str] = CERT_DELETE

    id: int

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DeleteCertificate:
        return cls(int(payload["id"]))

    def to_payload(self) -> dict[str, Any]:
        return {"id": self.id}


# --- ACME challenges ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PutAcmeChallenge:
    """`GET /.well-known/acme-challenge/{token}` answers `key_authorization` (RFC 8555
    §8.3) on every edge until the challenge is deleted."""

    KIND: ClassVar[str] = ACME_CHALLENGE_PUT

    token: str
    key_authorization: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PutAcmeChallenge:
        token, key_authorization = payload["token"], payload["key_authorization"]
        if not isinstance(token, str) or not isinstance(key_authorization, str):
            raise TypeError("an ACME challenge's token and key authorization are text")
        return cls(token, key_authorization)

    def to_payload(self) -> dict[str, Any]:
        return {"token": self.token, "key_authorization": self.key_authorization}


@dataclass(frozen=True, slots=True)
class DeleteAcmeChallenge:
    KIND: ClassVar[str] = ACME_CHALLENGE_DELETE

    token: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DeleteAcmeChallenge:
        return cls(str(payload["token"]))

    def to_payload(self) -> dict[str, Any]:
        return {"token": self.token}


# What the API commits to the log (control.log.EventLog).
Proposal = (
    CreateZone
    | PutZone
    | DeleteZone
    | PurgeRequest
    | Prefetch
    | CreateKey
    | RevokeKey
    | UpdateKey
    | PutCertificate
    | DeleteCertificate
    | PutAcmeChallenge
    | DeleteAcmeChallenge
)
