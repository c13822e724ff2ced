"""control.db as the node's replica of the event log: zones, keys and purge history are
what the log's events, applied in order, made them.

Every node applies every event through `Replica.apply`, so applying is deterministic: a
change that is no longer valid when its turn comes (a hostname another node's zone took
first, a zone deleted meanwhile) is refused the same way everywhere, and leaves nothing
but the log position behind. A single node applies its own proposals at once (and a
refusal becomes the API's error answer, with nothing stored); a cluster node applies
what the stream delivers.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from pullzone.bus import local, snapshots
from pullzone.bus.events import (
    ACME_CHALLENGE_DELETE,
    ACME_CHALLENGE_PUT,
    CERT_DELETE,
    CERT_PUT,
    KEY_CREATE,
    KEY_REVOKE,
    KEY_UPDATE,
    PREFETCH,
    PURGE,
    ZONE_CREATE,
    ZONE_DELETE,
    ZONE_PUT,
    CreateKey,
    CreateZone,
    DeleteAcmeChallenge,
    DeleteCertificate,
    Event,
    Prefetch,
    PurgeRequest,
    PutAcmeChallenge,
    PutCertificate,
    PutZone,
    RevokeKey,
    UpdateKey,
)
from pullzone.control import history, keys
from pullzone.control.store import ZoneStore
from pullzone.refusal import Reason, Refused
from pullzone.sqlite import transaction
from pullzone.zones.model import Zone


def create_schema(conn: sqlite3.Connection, edge_domain: str) -> ZoneStore:
    """Every table of control.db; returns the zone store on `conn`."""
    local.create_schema(conn)
    keys.create_schema(conn)
    history.create_schema(conn)
    return ZoneStore(conn, edge_domain)


class Replica:
    def __init__(self, conn: sqlite3.Connection, edge_domain: str) -> None:
        self.conn = conn
        self.zones = create_schema(conn, edge_domain)

    @property
    def position(self) -> int:
        return local.position(self.conn)

    def apply(self, event: Event) -> Event | None:
        """Apply one event in one transaction; returns what the node's log stores for
        the edge (None for key events). A refused change raises Refused and
        changes nothing; `skip` then moves the position past it."""
        with transaction(self.conn):
            stored = self._apply(event)
            if stored is not None:
                local.insert(self.conn, stored)
            local.set_position(self.conn, event.seq)
        return stored

    def skip(self, seq: int) -> None:
        with transaction(self.conn):
            local.set_position(self.conn, seq)

    def restore(self, snapshot: snapshots.Snapshot) -> None:
        """Replace what the events built with a snapshot of it (bus/snapshots.py); the
        position becomes the snapshot's sequence."""
        snapshots.restore(self.conn, snapshot)
        self.zones.create_schema()  # the host names, derived from the zones

    def _apply(self, event: Event) -> Event | None:
        if event.kind == ZONE_CREATE:
            create = CreateZone.from_payload(event.payload)
            zone = self.zones.create(
                event.seq, create.draft, derive_alias=create.derive_alias, stamp=create.stamp
            )
            return self._zone_put(event, zone)
        if event.kind == ZONE_PUT:
            put = PutZone.from_payload(event.payload)
            return self._zone_put(event, self.zones.replace(put.zone))
        if event.kind == ZONE_DELETE:
            self.zones.delete(event.zone_id)
            return event
        if event.kind == PURGE:
            if self.zones.get(event.zone_id) is None:
                raise Refused(Reason.NOT_FOUND, f"zone {event.zone_id} not found")
            purge = PurgeRequest.from_payload(event.payload)
            history.record(self.conn, event.seq, event.zone_id, event.at, purge.key_id, purge.plan)
            return Event.of(event.seq, event.zone_id, purge.plan, event.at)
        if event.kind == PREFETCH:
            if self.zones.get(event.zone_id) is None:
                raise Refused(Reason.NOT_FOUND, f"zone {event.zone_id} not found")
            prefetch = Prefetch.from_payload(event.payload)
            return Event.of(event.seq, event.zone_id, prefetch, event.at)
        if event.kind == KEY_CREATE:
            keys.store_key(self.conn, CreateKey.from_payload(event.payload).key)
            return None
        if event.kind == KEY_REVOKE:
            revoke = RevokeKey.from_payload(event.payload)
            if not keys.revoke_key(self.conn, revoke.id, revoke.at):
                raise Refused(Reason.NOT_FOUND, f"no live API key {revoke.id}")
            return None
        if event.kind == KEY_UPDATE:
            update = UpdateKey.from_payload(event.payload)
            # a key another node deleted meanwhile stays deleted, the same way everywhere
            if not keys.update_key(self.conn, update):
                raise Refused(Reason.NOT_FOUND, f"no live API key {update.id}")
            return None
        if event.kind == CERT_PUT:
            cert = PutCertificate.from_payload(event.payload).cert
            if not cert.id:
                cert = dataclasses.replace(cert, id=event.seq)
            elif not self.conn.execute(
                "SELECT 1 FROM certificates WHERE id = ?", (cert.id,)
            ).fetchone():
                # a change to a certificate another node deleted meanwhile: never revived
                raise Refused(Reason.NOT_FOUND, f"certificate {cert.id} not found")
            self.conn.execute(
                "INSERT OR REPLACE INTO certificates (id, record) VALUES (?, ?)",
                (cert.id, json.dumps(cert.to_record())),
            )
            return Event.of(event.seq, 0, PutCertificate(cert), event.at)
        if event.kind == CERT_DELETE:
            gone = DeleteCertificate.from_payload(event.payload)
            # The API refuses this with a 409; a zone another node pointed at the
            # certificate meanwhile is refused here, the same way on every node.
            using = [zone.id for zone in self.zones.list() if zone.ssl.certid == gone.id]
            if using:
                raise Refused(
                    Reason.CONFLICT,
                    f"certificate {gone.id} is used by zone {', '.join(map(str, using))}",
                )
            deleted = self.conn.execute("DELETE FROM certificates WHERE id = ?", (gone.id,))
            if not deleted.rowcount:
                raise Refused(Reason.NOT_FOUND, f"certificate {gone.id} not found")
            return event
        if event.kind == ACME_CHALLENGE_PUT:
            challenge = PutAcmeChallenge.from_payload(event.payload)
            self.conn.execute(
                "INSERT OR REPLACE INTO acme_challenges (token, key_authorization) VALUES (?, ?)",
                (challenge.token, challenge.key_authorization),
            )
            return Event.of(event.seq, 0, challenge, event.at)
        if event.kind == ACME_CHALLENGE_DELETE:
            token = DeleteAcmeChallenge.from_payload(event.payload).token
            self.conn.execute("DELETE FROM acme_challenges WHERE token = ?", (token,))
            return Event.of(event.seq, 0, DeleteAcmeChallenge(token), event.at)
        raise ValueError(f"unknown event kind {event.kind!r}")

    @staticmethod
    def _zone_put(event: Event, zone: Zone) -> Event:
        return Event.of(event.seq, zone.id, PutZone(zone), event.at)
