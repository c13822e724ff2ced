"""Zone management over the real API app (README, Zones): exact answers, what is stored,
and the events each write emits."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING

import httpx
import pytest
from conftest import stored_key

from pullzone.bus import local
from pullzone.bus.events import ZONE_DELETE, ZONE_PUT, Event
from pullzone.config import Settings
from pullzone.control.app import create_app
from pullzone.control.keys import ensure_admin_key
from pullzone.control.log import LocalLog
from pullzone.sqlite import connect
from pullzone.zones.model import Zone

if TYPE_CHECKING:
    from conftest import ApiHarness

API_EDGE_DOMAIN = "cdn.test"  # as the `api_settings` fixture sets it

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
DEFAULT_CACHE_ANSWER = {
    "cache": "4h",
    "expiry": "",
    "querystring": "Y",
    "cachecontrol": "Y",
    "usestale": "Y",
    "revalidate": "Y",
    "cacheInSecs": 14400,
    "cacheInMins": 240,
    "expiryInSecs": 0,
    "expiryInMins": 0,
}


async def test_create_answers_zone_created_with_every_5centscdn_field(api: ApiHarness) -> None:
    response = await api.client.post(
        "/zones/http/pull/new",
        json={
            "name": "My Site",
            "origin": "https://origin.example.com/static",
            "hostHeader": "www.example.com",
            "cnames": "cdn.example.com,img.example.com",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"result", "message", "zone"}
    assert body["result"] == "success"
    assert body["message"] == "Zone Created"
    zone = body["zone"]
    assert STAMP.match(zone.pop("created_at"))
    assert STAMP.match(zone.pop("updated_at"))
    assert re.fullmatch(r"[0-9a-z]{12}", zone.pop("hashid"))
    assert isinstance(zone.pop("serviceid"), int)
    assert zone == {
        "id": 1,
        "type": "pull",
        "mode": "http",
        "optimize": "http",
        "alias": "my-site",
        "name": "My Site",
        "origin": "https://origin.example.com/static",
        "backup": "",
        "hostHeader": "www.example.com",
        "cnames": "cdn.example.com,img.example.com",
        "cnamesArr": ["cdn.example.com", "img.example.com"],
        "cnamesArrFqdn": [f"my-site.{API_EDGE_DOMAIN}", "cdn.example.com", "img.example.com"],
        "fqdn": f"my-site.{API_EDGE_DOMAIN}",
        "disabled": "0",
        "status": "Enabled",
        "cache": DEFAULT_CACHE_ANSWER,
        "ssl": {
            "enabled": "N",
            "http2": "N",
            "redirect": "N",
            "mode": "default",
            "certid": 0,
            "warning": "",
        },
        "edge": {
            **dict.fromkeys(
                ("compression", "disposition", "stripcookie", "xff", "cors", "webp"), "N"
            ),
            **dict.fromkeys(("pseudostreaming", "wp", "lfo", "prefresh"), "N"),
            "compressionlevel": "6",
        },
        "securetoken": {
            "enabled": "N",
            "policy": "Q",
            "keyip": "N",
            "list": "",
            "timeout": 3600,
            "session": "0",
            "ips": "",
            "active": "N",
        },
        "domainlock": {
            "enabled": "N",
            "policy": "Y",
            "list": "",
            "ips": "",
            "noreferer": "N",
            "active": "N",
        },
        "geoblock": {"enabled": "N", "policy": "Y", "list": [], "ips": "", "active": "N"},
        "ipaccess": {"enabled": "N", "policy": "Y", "list": "", "ips": "", "active": "N"},
        "useragent": {
            "enabled": "N",
            "policy": "Y",
            "list": "",
            "ips": "",
            "casesensitive": "N",
            "active": "N",
        },
        "bwlimit": {"enabled": "N", "policy": "0", "rate": 0, "rateafter": 0},
        "originip": {"enabled": "N", "ip": "", "customhostheader": ""},
        "shield": {"enabled": "N", "network": "0"},
        "warnings": None,
    }


async def test_a_zone_created_without_cache_block_gets_the_default_one(api: ApiHarness) -> None:
    zone = await api.create()
    assert zone["cache"] == DEFAULT_CACHE_ANSWER
    assert zone["hostHeader"] == "origin.test"  # none set: the origin's host
    assert zone["cnames"] == "" and zone["cnamesArr"] == []


async def test_list_and_show_answer_the_same_zone_objects(api: ApiHarness) -> None:
    first = await api.create(name="one")
    second = await api.create(name="two")
    listed = await api.client.get("/zones/http/pull")
    assert listed.status_code == 200
    assert listed.json() == {"result": "success", "zones": [first, second]}
    shown = await api.client.get(f"/zones/http/pull/{second['id']}")
    assert shown.status_code == 200
    assert shown.json() == {"result": "success", "zone": second}


async def test_an_empty_list_is_an_empty_array(api: ApiHarness) -> None:
    response = await api.client.get("/zones/http/pull")
    assert response.json() == {"result": "success", "zones": []}


async def test_alias_defaults_to_a_unique_slug_of_the_name(api: ApiHarness) -> None:
    aliases = [(await api.create(name="My Site!"))["alias"] for _ in range(3)]
    assert aliases == ["my-site", "my-site-2", "my-site-3"]
    assert (await api.create(name="Ünïcödé  Zone"))["alias"] == "unicode-zone"
    assert (await api.create(name="!!!"))["alias"] == "zone"


async def test_an_explicit_alias_is_lower_cased_and_gives_the_fqdn(api: ApiHarness) -> None:
    zone = await api.create(alias="Static-1")
    assert zone["alias"] == "static-1"
    assert zone["fqdn"] == f"static-1.{API_EDGE_DOMAIN}"


async def test_5centscdn_create_example_fields_are_accepted(api: ApiHarness) -> None:
    """5centscdn's create examples carry `_METHOD` and switched-off blocks."""
    zone = await api.create(
        _METHOD="PUT",
        ssl={"http2": "Y", "redirect": "N", "mode": "S"},
        domainlock={"enabled": "N", "policy": "Y", "list": "", "ips": "", "noreferer": "N"},
        geoblock={"enabled": "N", "policy": "Y", "list": [], "ips": ""},
        bwlimit={"enabled": "N", "policy": "0", "rate": 0, "rateafter": 0},
        ipaccess={"enabled": "N", "policy": "Y", "list": "", "ips": ""},
        securetoken={"enabled": "N", "policy": "Q", "keyip": "N", "timeout": 5},
        useragent={"enabled": "N", "policy": "Y", "list": "", "casesensitive": "N"},
        edge={"compression": "N", "compressionlevel": "6", "cors": "N"},
        waf={},
    )
    assert zone["alias"] == "site"


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("30m", 1800), ("4h", 14400), ("1d", 86400), ("1M", 2592000), ("90", 90), ("0", 0)],
)
async def test_durations_in_5centscdn_forms(api: ApiHarness, duration: str, seconds: int) -> None:
    zone = await api.create(cache={"cache": duration, "expiry": duration})
    assert zone["cache"]["cache"] == duration
    assert zone["cache"]["cacheInSecs"] == seconds
    assert zone["cache"]["expiry"] == duration
    assert zone["cache"]["expiryInSecs"] == seconds


async def test_a_partial_cache_block_keeps_the_other_defaults(api: ApiHarness) -> None:
    zone = await api.create(cache={"querystring": "n", "expiry": "1d"})
    assert zone["cache"] == {
        **DEFAULT_CACHE_ANSWER,
        "querystring": "N",
        "expiry": "1d",
        "expiryInSecs": 86400,
        "expiryInMins": 1440,
    }


async def test_cnames_are_normalised(api: ApiHarness) -> None:
    zone = await api.create(cnames=" CDN.Example.com, 10.9.8.7 ,,2001:DB8::1, [::1]")
    assert zone["cnamesArr"] == ["cdn.example.com", "10.9.8.7", "[2001:db8::1]", "[::1]"]
    assert zone["cnames"] == "cdn.example.com,10.9.8.7,[2001:db8::1],[::1]"


@pytest.mark.parametrize(("given", "stored"), [("1", "1"), (1, "1"), (True, "1"), ("0", "0")])
async def test_disabled_takes_0_1_and_answers_status(
    api: ApiHarness, given: object, stored: str
) -> None:
    zone = await api.create(disabled=given)
    assert zone["disabled"] == stored
    assert zone["status"] == ("Disabled" if stored == "1" else "Enabled")


@pytest.mark.parametrize(
    "origin",
    [
        "http://origin.test",
        "https://origin.test:8443/prefix/",
        "http://10.0.0.1:8080",
        "http://[::1]:9000/a",
        "http://my_service:8080",
        "HTTPS://Origin.Example.com",
    ],
)
async def test_origins_accepted(api: ApiHarness, origin: str) -> None:
    assert (await api.create(origin=origin))["origin"] == origin


async def test_update_changes_only_the_fields_sent_and_merges_cache(api: ApiHarness) -> None:
    zone = await api.create(cnames="a.example.com", cache={"cache": "1h", "querystring": "N"})
    response = await api.client.post(
        f"/zones/http/pull/{zone['id']}",
        json={"name": "renamed", "cache": {"expiry": "1d"}, "disabled": "1"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == "success"
    assert body["message"] == "Zone updated successfully"
    updated = body["zone"]
    assert updated["name"] == "renamed"
    assert updated["disabled"] == "1" and updated["status"] == "Disabled"
    assert updated["cnames"] == "a.example.com"
    assert updated["origin"] == zone["origin"]
    assert updated["cache"]["cache"] == "1h"
    assert updated["cache"]["querystring"] == "N"
    assert updated["cache"]["expiry"] == "1d"
    assert updated["created_at"] == zone["created_at"]
    assert (await api.client.get(f"/zones/http/pull/{zone['id']}")).json()["zone"] == updated


async def test_update_can_clear_cnames_and_host_header_and_move_the_alias(api: ApiHarness) -> None:
    zone = await api.create(cnames="a.example.com", hostHeader="h.example.com")
    response = await api.client.post(
        f"/zones/http/pull/{zone['id']}", json={"cnames": "", "hostHeader": "", "alias": "moved"}
    )
    updated = response.json()["zone"]
    # no Host of its own: the answer names the origin's, which the edge sends
    assert (updated["cnames"], updated["cnamesArr"], updated["hostHeader"]) == (
        "",
        [],
        "origin.test",
    )
    assert updated["fqdn"] == f"moved.{API_EDGE_DOMAIN}"
    # the freed names can be taken by another zone now
    other = await api.create(cnames="a.example.com", alias="site")
    assert other["cnamesArr"] == ["a.example.com"]


async def test_update_cache_takes_the_block_fields_at_top_level(api: ApiHarness) -> None:
    zone = await api.create()
    response = await api.client.post(
        f"/zones/http/pull/{zone['id']}/cache", json={"cache": "1h", "querystring": "N"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["result"], body["message"]) == ("success", "Zone updated successfully")
    assert body["zone"]["cache"] == {
        **DEFAULT_CACHE_ANSWER,
        "cache": "1h",
        "cacheInSecs": 3600,
        "cacheInMins": 60,
        "querystring": "N",
    }


async def test_update_cache_also_takes_the_block_wrapped(api: ApiHarness) -> None:
    zone = await api.create()
    response = await api.client.post(
        f"/zones/http/pull/{zone['id']}/cache", json={"cache": {"expiry": "30m"}}
    )
    assert response.status_code == 200
    assert response.json()["zone"]["cache"]["expiry"] == "30m"
    assert response.json()["zone"]["cache"]["cache"] == "4h"


async def test_5centscdn_update_cache_example_with_derived_fields_works(api: ApiHarness) -> None:
    zone = await api.create()
    body = {
        "cache": "1h",
        "expiry": "1d",
        "querystring": "Y",
        "cachecontrol": "Y",
        "usestale": "Y",
        "revalidate": "Y",
        "cacheInSecs": 3600,
        "cacheInMins": 60,
        "expiryInSecs": 86400,
        "expiryInMins": 1440,
    }
    response = await api.client.post(f"/zones/http/pull/{zone['id']}/cache", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["zone"]["cache"]["cacheInSecs"] == 3600


async def test_an_update_that_changes_nothing_writes_nothing(api: ApiHarness) -> None:
    zone = await api.create(cache={"cache": "1h"})
    before = len(api.events)
    for path, body in [("", {}), ("", {"name": "site"}), ("/cache", {"cache": "1h"})]:
        response = await api.client.post(f"/zones/http/pull/{zone['id']}{path}", json=body)
        assert response.status_code == 200
        assert response.json()["zone"] == zone
    assert len(api.events) == before


async def test_delete_answers_zone_deleted_and_the_zone_is_gone(api: ApiHarness) -> None:
    zone = await api.create(cnames="a.example.com")
    response = await api.client.delete(f"/zones/http/pull/{zone['id']}")
    assert response.status_code == 200
    assert response.json() == {"result": "success", "message": "Zone Deleted"}
    assert (await api.client.get(f"/zones/http/pull/{zone['id']}")).status_code == 404
    assert await api.zones() == []
    # its hostnames are free again
    assert (await api.create(cnames="a.example.com"))["alias"] == "site"


async def test_zone_ids_are_never_reused(api: ApiHarness) -> None:
    first = await api.create()
    await api.client.delete(f"/zones/http/pull/{first['id']}")
    assert (await api.create())["id"] > first["id"]


async def test_each_write_emits_its_event_in_order(api: ApiHarness) -> None:
    zone = await api.create()
    zone_id = zone["id"]
    await api.client.post(f"/zones/http/pull/{zone_id}", json={"name": "renamed"})
    await api.client.post(f"/zones/http/pull/{zone_id}/cache", json={"cache": "1d"})
    await api.client.delete(f"/zones/http/pull/{zone_id}")
    assert [(e.kind, e.zone_id) for e in api.events] == [
        (ZONE_PUT, zone_id),
        (ZONE_PUT, zone_id),
        (ZONE_PUT, zone_id),
        (ZONE_DELETE, zone_id),
    ]
    seqs = [e.seq for e in api.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    put = [Zone.from_record(e.payload["zone"]) for e in api.events[:3]]
    assert [z.name for z in put] == ["site", "renamed", "renamed"]
    assert put[2].cache.cache == "1d"
    assert api.events[3].payload == {}
    # the same events are in the log, committed
    conn = connect(api.settings.control_db)
    assert [(e.seq, e.kind, e.payload) for e in local.read_since(conn, 0)] == [
        (e.seq, e.kind, e.payload) for e in api.events
    ]


async def test_the_event_is_committed_before_on_event_and_answered_after(
    api_settings: Settings,
) -> None:
    seen: list[tuple[int, bool]] = []
    done: list[Event] = []

    async def on_event(event: Event) -> None:
        # another connection (the applier's) already sees the change
        other = connect(api_settings.control_db)
        row = other.execute("SELECT 1 FROM zones WHERE id = ?", (event.zone_id,)).fetchone()
        seen.append((event.seq, row is not None))
        other.close()
        done.append(event)

    app = create_app(api_settings, LocalLog(api_settings, on_event))
    ensure_admin_key(app.state.control.conn, api_settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://api.test/v2",
        headers={"X-API-Key": api_settings.admin_key or ""},
    ) as client:
        response = await client.post(
            "/zones/http/pull/new", json={"name": "a", "origin": "http://o.test"}
        )
        assert response.status_code == 200
        assert len(done) == 1  # awaited before the answer
    assert seen == [(1, True)]


async def test_the_stored_record_is_what_the_edge_reads(api: ApiHarness) -> None:
    zone = await api.create(cnames="a.example.com", cache={"querystring": "N"})
    conn = connect(api.settings.control_db)
    records = [json.loads(row[0]) for row in conn.execute("SELECT record FROM zones")]
    assert len(records) == 1
    stored = Zone.from_record(records[0])
    answered = stored.to_api(API_EDGE_DOMAIN)
    assert {**answered, "warnings": None} == zone
    hosts = dict(conn.execute("SELECT host, zone_id FROM zone_hosts").fetchall())
    assert hosts == {f"site.{API_EDGE_DOMAIN}": zone["id"], "a.example.com": zone["id"]}


async def test_zones_survive_a_restart(api: ApiHarness) -> None:
    zone = await api.create(cnames="a.example.com")

    async def nothing(event: Event) -> None:
        return None

    again = create_app(api.settings, LocalLog(api.settings, nothing))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(again),
        base_url="http://api.test/v2",
        headers={"X-API-Key": api.settings.admin_key or ""},
    ) as client:
        assert (await client.get("/zones/http/pull")).json()["zones"] == [zone]
        taken = await client.post(
            "/zones/http/pull/new",
            json={"name": "b", "origin": "http://o.test", "cnames": "a.example.com"},
        )
        assert taken.status_code == 400
    again.state.control.conn.close()


# --- scoped keys ------------------------------------------------------------------------


async def test_a_zone_scoped_key_sees_and_changes_only_its_zones(api: ApiHarness) -> None:
    mine = await api.create(name="mine")
    other = await api.create(name="other")
    key, _ = stored_key(api.app.state.control.conn, "ci", zones=[mine["id"]])
    async with api.client_with(key) as client:
        listed = (await client.get("/zones/http/pull")).json()["zones"]
        assert [z["id"] for z in listed] == [mine["id"]]
        assert (await client.get(f"/zones/http/pull/{mine['id']}")).status_code == 200
        changed = await client.post(f"/zones/http/pull/{mine['id']}", json={"name": "x"})
        assert changed.status_code == 200
        for response in [
            await client.get(f"/zones/http/pull/{other['id']}"),
            await client.post(f"/zones/http/pull/{other['id']}", json={"name": "x"}),
            await client.post(f"/zones/http/pull/{other['id']}/cache", json={"cache": "1h"}),
            await client.delete(f"/zones/http/pull/{other['id']}"),
            await client.get("/zones/http/pull/999"),  # not its zone: 403, existing or not
            await client.post("/zones/http/pull/new", json={"name": "n", "origin": "http://o"}),
        ]:
            assert response.status_code == 403, response.text
            assert response.json()["result"] == "error"
    assert (await api.client.get(f"/zones/http/pull/{other['id']}")).json()["zone"] == other


async def test_a_purge_only_key_reads_but_does_not_write(api: ApiHarness) -> None:
    zone = await api.create()
    key, _ = stored_key(api.app.state.control.conn, "purger", purge_only=True)
    async with api.client_with(key) as client:
        assert (await client.get(f"/zones/http/pull/{zone['id']}")).status_code == 200
        assert len((await client.get("/zones/http/pull")).json()["zones"]) == 1
        update = await client.post(f"/zones/http/pull/{zone['id']}", json={"name": "x"})
        assert update.status_code == 403
        assert (await client.delete(f"/zones/http/pull/{zone['id']}")).status_code == 403
    assert await api.zones() == [zone]


async def test_concurrent_creates_get_distinct_aliases_and_ids(api: ApiHarness) -> None:
    async def create() -> httpx.Response:
        return await api.client.post(
            "/zones/http/pull/new", json={"name": "same", "origin": "http://o.test"}
        )

    responses = await asyncio.gather(*(create() for _ in range(20)))
    assert all(r.status_code == 200 for r in responses)
    zones = [r.json()["zone"] for r in responses]
    assert len({z["alias"] for z in zones}) == 20
    assert len({z["id"] for z in zones}) == 20
    assert len(api.events) == 20
