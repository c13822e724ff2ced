"""control.db as the event log applied (control.replica): what each event makes, and that a
change no longer valid when its turn comes is refused the same way, leaving only the
position behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pullzone.bus import local
from pullzone.bus.events import (
    CERT_DELETE,
    CERT_PUT,
    KEY_CREATE,
    KEY_REVOKE,
    KEY_UPDATE,
    PURGE,
    ZONE_CREATE,
    ZONE_DELETE,
    ZONE_PUT,
    Event,
)
from pullzone.certs.model import Certificate
from pullzone.control import certs, history, keys
from pullzone.control.replica import Replica
from pullzone.refusal import Reason, Refused
from pullzone.sqlite import connect
from pullzone.zones.model import SslPolicy, Zone


@pytest.fixture()
def replica(tmp_path: Path) -> Replica:
    return Replica(connect(tmp_path / "control.db"), "cdn.test")


def event(seq: int, kind: str, zone_id: int = 0, **payload: Any) -> Event:
    return Event(seq, kind, zone_id, payload, at=1000.0 + seq)


def create(seq: int, alias: str, *, derive: bool = False, cnames: tuple[str, ...] = ()) -> Event:
    draft = Zone(id=0, name=alias, alias=alias, origin="http://o.test", cnames=cnames)
    return event(
        seq,
        ZONE_CREATE,
        zone={**draft.to_record()},
        derive_alias=derive,
        stamp="2026-01-01 00:00:00",
    )


def test_a_zone_is_the_sequence_of_its_create_event(replica: Replica) -> None:
    stored = replica.apply(create(7, "site"))
    assert stored is not None and stored.kind == ZONE_PUT and stored.seq == 7
    zone = replica.zones.get(7)
    assert zone is not None and zone.alias == "site" and zone.created_at == "2026-01-01 00:00:00"
    assert stored.payload == {"zone": zone.to_record()}
    assert local.read_since(replica.conn, 0) == [stored]
    assert replica.position == 7


def test_a_derived_alias_is_made_unique_the_same_way_everywhere(replica: Replica) -> None:
    replica.apply(create(1, "site"))
    replica.apply(create(2, "site", derive=True))
    zone = replica.zones.get(2)
    assert zone is not None and zone.alias == "site-2"


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (create(2, "site"), Reason.CONFLICT),  # the alias taken meanwhile
        (create(2, "other", cnames=("www.site.test",)), Reason.CONFLICT),  # the hostname
        (
            event(2, PURGE, 99, all=True, delete=False, files=[], tags=[], key_id="admin"),
            Reason.NOT_FOUND,
        ),
        (event(2, ZONE_DELETE, 99), Reason.NOT_FOUND),
        (event(2, KEY_REVOKE, id="key_nope", at="2026-01-01 00:00:00"), Reason.NOT_FOUND),
    ],
)
def test_a_change_invalid_at_its_turn_is_refused_and_changes_nothing(
    replica: Replica, second: Event, reason: Reason
) -> None:
    replica.apply(create(1, "site", cnames=("www.site.test",)))
    before = local.read_since(replica.conn, 0), replica.zones.list()
    with pytest.raises(Refused) as refused:
        replica.apply(second)
    assert refused.value.reason is reason
    assert (local.read_since(replica.conn, 0), replica.zones.list()) == before
    assert replica.position == 1
    replica.skip(2)  # what a cluster node does with a refusal
    assert replica.position == 2


def test_an_update_of_a_zone_deleted_meanwhile_is_refused(replica: Replica) -> None:
    replica.apply(create(1, "site"))
    zone = replica.zones.get(1)
    assert zone is not None
    replica.apply(event(2, ZONE_DELETE, 1))
    with pytest.raises(Refused, match="not found"):
        replica.apply(event(3, ZONE_PUT, 1, zone=zone.with_changes(name="new").to_record()))
    assert replica.zones.get(1) is None


def test_an_update_keeps_when_the_zone_was_created(replica: Replica) -> None:
    replica.apply(create(1, "site"))
    changed = Zone(id=1, name="renamed", alias="site", origin="http://o.test", created_at="x")
    stored = replica.apply(event(2, ZONE_PUT, 1, zone=changed.to_record()))
    zone = replica.zones.get(1)
    assert zone is not None and zone.name == "renamed"
    assert zone.created_at == "2026-01-01 00:00:00"
    assert stored is not None and stored.payload["zone"]["created_at"] == zone.created_at


def test_a_purge_is_stored_for_the_edge_and_in_the_history(replica: Replica) -> None:
    replica.apply(create(1, "site"))
    file = {"path": "/a", "query": None, "prefix": False}
    plan = {"all": False, "delete": True, "files": [file], "tags": []}
    stored = replica.apply(event(2, PURGE, 1, **plan, key_id="key_1"))
    assert stored == Event(2, PURGE, 1, plan, 1002.0)  # the key id stays in the history
    [record] = history.listing(replica.conn, 1)
    assert record["id"] == 2 and record["key"] == "key_1" and record["delete"] is True


def test_keys_are_events_too(replica: Replica) -> None:
    secret, record = keys.new_key("ci", zones=[3, 1, 3], purge_only=True)
    assert record.zones == (1, 3) and secret not in str(record)
    assert replica.apply(event(1, KEY_CREATE, key=record.to_payload())) is None  # not for the edge
    principal = keys.authenticate(replica.conn, secret)
    assert principal is not None and principal.may("purge", 3) and not principal.may("write", 3)
    replica.apply(event(2, KEY_REVOKE, id=record.id, at="2026-01-02 00:00:00"))
    assert keys.authenticate(replica.conn, secret) is None
    assert local.read_since(replica.conn, 0) == [] and replica.position == 2


def test_a_key_update_changes_what_the_key_may_do_at_once(replica: Replica) -> None:
    secret, record = keys.new_key("app", permissions=("read",))
    replica.apply(event(1, KEY_CREATE, key=record.to_payload()))
    principal = keys.authenticate(replica.conn, secret)
    assert principal is not None and principal.may("read", 3) and not principal.may("update", 3)
    change = {"id": record.id, "name": "app2", "description": "d", "permissions": ["update"]}
    assert replica.apply(event(2, KEY_UPDATE, **change)) is None  # not for the edge
    principal = keys.authenticate(replica.conn, secret)
    assert principal is not None and principal.may("update", 3) and not principal.may("read", 3)
    info = keys.get_key(replica.conn, record.id)
    assert info is not None and (info.name, info.description) == ("app2", "d")
    # a key another node deleted first stays deleted: refused, only the position moves
    replica.apply(event(3, KEY_REVOKE, id=record.id, at="2026-01-02 00:00:00"))
    with pytest.raises(Refused) as refused:
        replica.apply(event(4, KEY_UPDATE, **change))
    assert refused.value.reason is Reason.NOT_FOUND
    replica.skip(4)
    assert keys.authenticate(replica.conn, secret) is None and replica.position == 4


# --- certificates ------------------------------------------------------------------------


def _cert_event(seq: int, cert_id: int = 0) -> Event:
    cert = Certificate(cert_id, "c", "CRT", "KEY", "", "a.test", ("a.test",), 1.0, 2.0)
    return event(seq, CERT_PUT, cert=cert.to_record())


def test_a_new_certificate_is_the_sequence_of_its_event(replica: Replica) -> None:
    replica.apply(_cert_event(4))
    stored = certs.get(replica.conn, 4)
    assert stored is not None and stored.key == "KEY"


def test_a_change_to_a_deleted_certificate_is_refused(replica: Replica) -> None:
    with pytest.raises(Refused) as caught:
        replica.apply(_cert_event(5, cert_id=3))
    assert caught.value.reason is Reason.NOT_FOUND


def test_a_certificate_a_zone_uses_is_not_deleted(replica: Replica) -> None:
    replica.apply(_cert_event(1))
    zone = replica.zones.create(
        2, Zone(id=0, name="s", alias="s", origin="http://o.test"), derive_alias=False, stamp=""
    )
    replica.zones.replace(zone.with_changes(ssl=SslPolicy(enabled=True, certid=1)))
    with pytest.raises(Refused) as caught:
        replica.apply(event(3, CERT_DELETE, id=1))
    assert caught.value.reason is Reason.CONFLICT and "zone 2" in caught.value.message
