"""Event payloads as typed records (bus.events): the JSON stored in control.db and the
JetStream stream today decodes into its record, and the record writes it back byte for
byte, so events already in a log still apply and new ones read the same everywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pullzone.bus import local
from pullzone.bus.events import (
    CreateKey,
    CreateZone,
    DeleteZone,
    Event,
    KeyRecord,
    PurgeRequest,
    PutZone,
    RevokeKey,
    UpdateKey,
)
from pullzone.zones.model import Zone
from pullzone.zones.plan import PurgeFile, PurgePlan

ZONE = Zone(id=7, name="site", alias="site", origin="http://o.test", cnames=("cdn.test",))
RECORD = json.dumps(ZONE.to_record(), separators=(",", ":"))
KEY = KeyRecord("key_0a1b2c", "ci", "sha256-of-the-key", (1, 3), True, "2026-01-01 00:00:00")
FILES = (
    PurgeFile("/a", None, prefix=False),
    PurgeFile("/img/", None, prefix=True),
    PurgeFile("/q", "x=1", prefix=False),
)

# Each payload as the API and the replica have written it (keys in this order).
STORED = [
    (
        CreateZone,
        '{"zone":' + RECORD + ',"derive_alias":true,"stamp":"2026-01-01 00:00:00"}',
        CreateZone(ZONE, derive_alias=True, stamp="2026-01-01 00:00:00"),
    ),
    (PutZone, '{"zone":' + RECORD + "}", PutZone(ZONE)),
    (DeleteZone, "{}", DeleteZone()),
    (PurgePlan, '{"all":true,"delete":false}', PurgePlan(whole_zone=True, delete=False)),
    (
        PurgePlan,
        '{"all":false,"delete":true,"files":[{"path":"/a","query":null,"prefix":false},'
        '{"path":"/img/","query":null,"prefix":true},{"path":"/q","query":"x=1","prefix":false}'
        '],"tags":["t1","t2"]}',
        PurgePlan(False, True, FILES, ("t1", "t2")),
    ),
    (
        PurgePlan,
        '{"all":false,"delete":false,"files":[{"path":"/img/","query":"w=1","prefix":true,'
        '"glob":{"v":1,"pattern":"/img/*.png"}}],"tags":[]}',
        PurgePlan(False, False, (PurgeFile("/img/", "w=1", prefix=True, glob="/img/*.png"),)),
    ),
    (
        PurgeRequest,
        '{"all":true,"delete":true,"key_id":"admin"}',
        PurgeRequest(PurgePlan(True, delete=True), "admin"),
    ),
    (
        PurgeRequest,
        '{"all":false,"delete":false,"files":[],"tags":["t"],"key_id":"key_1"}',
        PurgeRequest(PurgePlan(False, False, (), ("t",)), "key_1"),
    ),
    (
        CreateKey,
        '{"key":{"id":"key_0a1b2c","name":"ci","key_hash":"sha256-of-the-key","zones":[1,3],'
        '"purge_only":true,"created_at":"2026-01-01 00:00:00"}}',
        CreateKey(KEY),
    ),
    (
        CreateKey,
        '{"key":{"id":"k","name":"","key_hash":"h","zones":null,"purge_only":false,'
        '"created_at":"t"}}',
        CreateKey(KeyRecord("k", "", "h", None, False, "t")),
    ),
    (
        RevokeKey,
        '{"id":"key_1","at":"2026-01-02 00:00:00"}',
        RevokeKey("key_1", "2026-01-02 00:00:00"),
    ),
    # A key of /v2/account/api: description and permissions after the older fields.
    (
        CreateKey,
        '{"key":{"id":"k","name":"app","key_hash":"h","zones":null,"purge_only":true,'
        '"created_at":"t","description":"mobile","permissions":["read","create"]}}',
        CreateKey(KeyRecord("k", "app", "h", None, True, "t", "mobile", ("read", "create"))),
    ),
    (
        CreateKey,
        '{"key":{"id":"k","name":"app","key_hash":"h","zones":null,"purge_only":false,'
        '"created_at":"t","permissions":["read","update","delete"]}}',
        CreateKey(KeyRecord("k", "app", "h", None, False, "t", "", ("read", "update", "delete"))),
    ),
    (
        UpdateKey,
        '{"id":"key_1","name":"app","description":"","permissions":["read","purge"]}',
        UpdateKey("key_1", "app", "", ("read", "purge")),
    ),
]


@pytest.mark.parametrize(("record", "text", "decoded"), STORED)
def test_a_stored_payload_decodes_into_its_record_and_back_byte_for_byte(
    record: Any, text: str, decoded: Any
) -> None:
    assert record.from_payload(json.loads(text)) == decoded
    event = Event.of(5, 7, decoded, at=1.0)
    assert event.kind == record.KIND
    assert event.payload_json() == text


def test_what_older_or_hand_written_purges_leave_out_reads_as_the_appliers_read_it() -> None:
    plan = PurgePlan.from_payload({"files": [{"path": "/a"}], "delete": False})
    assert plan == PurgePlan(False, False, (PurgeFile("/a", None, prefix=False),))
    # A whole-zone purge purges the whole zone: whatever else it lists is never read.
    assert PurgePlan.from_payload({"all": True, "files": "junk"}) == PurgePlan(True, False)


@pytest.mark.parametrize(
    ("record", "payload"),
    [
        (PurgePlan, {"all": False, "files": [{"query": "x"}]}),
        (PurgePlan, {"files": ["/a"]}),
        (PurgeRequest, {"all": True, "delete": True}),  # no key_id
        (CreateZone, {"zone": ZONE.to_record()}),
        (PutZone, {"zone": "not a record"}),
        (CreateKey, {"key": {"id": "k"}}),
        (RevokeKey, {"at": "t"}),
        (CreateKey, {"key": {**KEY.to_payload(), "permissions": ["read", "admin"]}}),
        (CreateKey, {"key": {**KEY.to_payload(), "permissions": []}}),
        (CreateKey, {"key": {**KEY.to_payload(), "permissions": "read"}}),
        (UpdateKey, {"id": "k", "name": "n", "description": ""}),  # no permissions
        (UpdateKey, {"id": "k", "name": "n", "description": "", "permissions": ["sudo"]}),
    ],
)
def test_a_payload_its_kind_cannot_use_is_quarantined(record: Any, payload: dict[str, Any]) -> None:
    with pytest.raises(local.UNAPPLICABLE):
        record.from_payload(payload)


def test_a_key_record_of_an_older_release_reads_as_a_key_without_permissions() -> None:
    """Keys made before /v2/account/api: no description, permissions by purge_only."""
    older = next(text for _, text, _ in STORED if text.startswith('{"key":{"id":"key_0a1b2c"'))
    record = KeyRecord.from_payload(json.loads(older)["key"])
    assert (record.description, record.permissions, record.purge_only) == ("", None, True)


def test_permissions_are_read_in_one_order_without_purge_beside_update() -> None:
    payload = {
        "id": "k",
        "name": "n",
        "description": "",
        "permissions": ["purge", "update", "read"],
    }
    assert UpdateKey.from_payload(payload).permissions == ("read", "update")
