"""What 5centscdn's own clients send (docs/compatibility.md): form bodies, `_METHOD`,
alias-only creates, `cname`, the zone's answer sent back whole, one route per block."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from conftest import ApiHarness
from test_api_errors import Unchanged, assert_error

from pullzone.zones.model import Zone

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ORIGIN = "http://origin.test"


async def form(api: ApiHarness, path: str, fields: list[tuple[str, str]]) -> httpx.Response:
    """What Guzzle's `form_params` sends: PHP's http_build_query of the fields."""
    return await api.client.post(path, content=urlencode(fields).encode(), headers=FORM)


@pytest.fixture()
async def zone(api: ApiHarness) -> dict[str, Any]:
    return await api.create(alias="site", cnames="cdn.example.com")


async def test_the_plugin_create_form_with_alias_and_origin_alone(api: ApiHarness) -> None:
    response = await form(
        api,
        "/zones/http/pull/new",
        [
            ("_METHOD", "PUT"),
            ("alias", "wp-site"),
            ("origin", "https://www.example.com"),
            ("optimize", "http"),
            ("cache[cache]", "1d"),
            ("cache[expiry]", ""),
            ("ssl[http2]", "Y"),
            ("domainlock[enabled]", "N"),
            ("domainlock[list]", ""),
            ("geoblock[enabled]", "N"),
            ("geoblock[list][]", "US"),
            ("geoblock[list][]", "gb"),
            ("securetoken[enabled]", "N"),
            ("securetoken[timeout]", "5"),
            ("securetoken[session]", "0"),
            ("bwlimit[rate]", "0"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Zone Created"
    zone = body["zone"]
    assert (zone["alias"], zone["name"], zone["optimize"]) == ("wp-site", "wp-site", "http")
    assert zone["hostHeader"] == "www.example.com"
    assert zone["cache"]["cache"] == "1d" and zone["cache"]["cacheInMins"] == 1440
    assert zone["ssl"]["http2"] == "Y"
    assert zone["geoblock"]["list"] == ["US", "GB"]
    assert zone["securetoken"]["timeout"] == 5


async def test_json_create_from_alias_and_origin(api: ApiHarness) -> None:
    response = await api.client.post(
        "/zones/http/pull/new", json={"_METHOD": "put", "alias": "a1", "origin": ORIGIN}
    )
    assert response.status_code == 200, response.text
    assert response.json()["zone"]["name"] == "a1"


async def test_the_zone_answer_sent_back_whole_changes_nothing(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    async with Unchanged(api):
        response = await api.client.post(f"/zones/http/pull/{zone['id']}", json=zone)
        assert response.status_code == 200, response.text
        assert response.json()["zone"] == zone


async def test_the_answer_sent_back_with_a_change_applies_it(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    changed = {**zone, "cnames": "img.example.com", "alias": "moved"}  # stale fqdn, cnamesArr
    response = await api.client.post(f"/zones/http/pull/{zone['id']}", json=changed)
    assert response.status_code == 200, response.text
    answer = response.json()["zone"]
    assert answer["cnamesArr"] == ["img.example.com"]
    assert answer["fqdn"].startswith("moved.")
    assert answer["hostHeader"] == "origin.test"  # answered, not stored
    assert (await api.client.get(f"/zones/http/pull/{zone['id']}")).json()["zone"] == answer


@pytest.mark.parametrize(
    ("field", "value"),
    [("fqdn", "other.cdn.test"), ("id", 99), ("hashid", "x"), ("status", "Disabled")],
)
async def test_a_changed_read_only_field_is_400_naming_it(
    api: ApiHarness, zone: dict[str, Any], field: str, value: object
) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            f"/zones/http/pull/{zone['id']}", json={**zone, field: value}
        )
        assert_error(response, 400, f"{field}: read-only")


async def test_a_changed_active_flag_is_400(api: ApiHarness, zone: dict[str, Any]) -> None:
    async with Unchanged(api):
        body = {"ipaccess": {**zone["ipaccess"], "active": "Y"}}
        response = await api.client.post(f"/zones/http/pull/{zone['id']}", json=body)
        assert_error(response, 400, "ipaccess.active is read-only")


async def test_cname_is_cnames_by_another_name(api: ApiHarness, zone: dict[str, Any]) -> None:
    response = await form(api, f"/zones/http/pull/{zone['id']}", [("cname", "a.example.com")])
    assert response.status_code == 200, response.text
    assert response.json()["zone"]["cnamesArr"] == ["a.example.com"]
    async with Unchanged(api):
        response = await api.client.post(
            f"/zones/http/pull/{zone['id']}", json={"cname": "b.example.com", "cnames": "c.test"}
        )
        assert_error(response, 400, "cname and cnames differ")


async def test_method_delete_on_the_zone_deletes_it(api: ApiHarness, zone: dict[str, Any]) -> None:
    async with Unchanged(api):
        response = await form(
            api, f"/zones/http/pull/{zone['id']}", [("_METHOD", "DELETE"), ("name", "x")]
        )
        assert_error(response, 400, "without other fields")
    response = await form(api, f"/zones/http/pull/{zone['id']}", [("_METHOD", "DELETE")])
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "success", "message": "Zone Deleted"}
    assert (await api.client.get(f"/zones/http/pull/{zone['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("path", "method"),
    [("/zones/http/pull/new", "DELETE"), ("/zones/http/pull/{id}/cache", "DELETE")],
)
async def test_a_method_override_that_does_not_fit_is_400(
    api: ApiHarness, zone: dict[str, Any], path: str, method: str
) -> None:
    async with Unchanged(api):
        fields = [("_METHOD", method), ("alias", "z"), ("origin", ORIGIN)]
        if "{id}" in path:
            fields = [("_METHOD", method), ("cache", "1h")]
        response = await form(api, path.format(id=zone["id"]), fields)
        assert_error(response, 400, "_METHOD", "does not fit")


async def test_the_plugin_purges_with_method_delete_and_files(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    path = f"/zones/http/pull/{zone['id']}/purge"
    response = await form(
        api, path, [("_METHOD", "DELETE"), ("files[]", "/a.css"), ("files[]", "/b.js")]
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Zone Purged"
    assert [f["path"] for f in api.events[-1].payload["files"]] == ["/a.css", "/b.js"]
    response = await form(api, path, [("_METHOD", "DELETE")])
    assert response.status_code == 200, response.text
    assert api.events[-1].payload["all"] is True
    async with Unchanged(api):
        assert_error(await form(api, path, [("_METHOD", "PUT")]), 400, "does not fit")


async def test_get_zones_lists_every_zone(api: ApiHarness, zone: dict[str, Any]) -> None:
    response = await api.client.get("/zones")
    assert response.status_code == 200
    assert response.json() == {"result": "success", "zones": [zone]}


# --- one route per block ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "fields", "expected"),
    [
        ("edge", [("compressionlevel", "9")], {"compressionlevel": "9"}),
        (
            "edge",
            [("compression", "Y"), ("compressionlevel", "4")],
            {"compression": "Y", "compressionlevel": "4"},
        ),
        (
            "ipaccess",
            [("list", "10.1.2.3/8, 2001:DB8::1"), ("ips", "192.0.2.1"), ("mode", "save")],
            {"list": "10.0.0.0/8,2001:db8::1", "ips": "192.0.2.1"},
        ),
        (
            "domainlock",
            [("policy", "N"), ("list", "*.Example.com,example.org"), ("noreferer", "Y")],
            {"policy": "N", "list": "example.com,example.org", "noreferer": "Y"},
        ),
        ("geoblock", [("list[]", "de"), ("list[]", "FR")], {"list": ["DE", "FR"]}),
        (
            "securetoken",
            [("policy", "D"), ("list", "s3cret"), ("timeout", "600"), ("keyip", "1")],
            {"policy": "D", "list": "s3cret", "timeout": 600, "keyip": "Y"},
        ),
        (  # applied at the edge: switched on, and answered as active
            "securetoken",
            [("enabled", "Y"), ("list", "k1"), ("policy", "F")],
            {"enabled": "Y", "list": "k1", "policy": "F", "active": "Y"},
        ),
        (
            "useragent",
            [("list", "curl,Wget"), ("casesensitive", "Y")],
            {"list": "curl,Wget", "casesensitive": "Y"},
        ),
        (
            "bwlimit",
            [("policy", "1"), ("rate", "512"), ("rateafter", "1024")],
            {"policy": "1", "rate": 512, "rateafter": 1024},
        ),
        (
            "originip",
            [("ip", "192.0.2.10"), ("customhostheader", "www.example.com")],
            {"ip": "192.0.2.10", "customhostheader": "www.example.com"},
        ),
        ("shield", [("network", "2")], {"network": "2"}),
        ("shield", [("enabled", "Y")], {"enabled": "Y"}),  # misses go through the shields
    ],
)
async def test_a_block_route_stores_the_block_and_answers_the_zone(
    api: ApiHarness,
    zone: dict[str, Any],
    block: str,
    fields: list[tuple[str, str]],
    expected: dict[str, Any],
) -> None:
    response = await form(api, f"/zones/http/pull/{zone['id']}/{block}", fields)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Zone updated successfully"
    assert body["zone"][block] == {**zone[block], **expected}
    shown = (await api.client.get(f"/zones/http/pull/{zone['id']}")).json()["zone"]
    assert shown[block] == body["zone"][block]
    # wrapped as {block: {…}} in JSON, the same block again: nothing changes
    async with Unchanged(api):
        again = await api.client.post(
            f"/zones/http/pull/{zone['id']}/{block}", json={block: body["zone"][block]}
        )
        assert again.status_code == 200, again.text


@pytest.mark.parametrize(
    ("block", "body", "words"),
    [
        ("ipaccess", {"list": "10.0.0.0/33"}, ("list", "10.0.0.0/33", "CIDR")),
        ("ipaccess", {"ips": "not-an-ip"}, ("ips", "not-an-ip")),
        ("geoblock", {"list": ["US", "XX"]}, ("list", "XX", "country code")),
        ("securetoken", {"list": "k" * 65}, ("list", "64 characters")),
        ("securetoken", {"timeout": 4}, ("timeout",)),
        ("securetoken", {"session": "1"}, ("session", "not supported")),
        ("securetoken", {"policy": "X"}, ("policy",)),
        ("securetoken", {"enabled": "Y", "list": ""}, ("securetoken.list", "secret is needed")),
        ("edge", {"compressionlevel": 10}, ("compressionlevel", "1 to 9")),
        ("domainlock", {"list": "https://example.com/"}, ("list", "domain only")),
        ("bwlimit", {"rate": -1}, ("rate",)),
        ("originip", {"ip": "host.example"}, ("ip", "not an IP address")),
        ("shield", {"nope": "1"}, ("unknown field", "nope", "accepted: enabled, network")),
        ("edge", {"webp": "Y"}, ("edge.webp", "no image conversion")),
    ],
)
async def test_bad_block_fields_are_400_naming_them(
    api: ApiHarness, zone: dict[str, Any], block: str, body: dict[str, Any], words: tuple[str, ...]
) -> None:
    async with Unchanged(api):
        for path, sent in ((f"/{block}", body), ("", {block: body})):
            response = await api.client.post(f"/zones/http/pull/{zone['id']}{path}", json=sent)
            assert_error(response, 400, *words)


async def test_a_backup_origin_is_validated_and_stored(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            f"/zones/http/pull/{zone['id']}", json={"backup": "ftp://b.example"}
        )
        assert_error(response, 400, "backup", "scheme")
    response = await api.client.post(
        f"/zones/http/pull/{zone['id']}", json={"backup": "https://b.example"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["zone"]["backup"] == "https://b.example"


def test_a_zone_stored_before_the_blocks_reads_back_with_their_defaults() -> None:
    old = {
        "id": 3,
        "name": "old",
        "alias": "old",
        "origin": "http://o.test",
        "host_header": "",
        "cnames": [],
        "disabled": False,
        "cache": {},
        "created_at": "2025-01-01 00:00:00",
        "updated_at": "2025-01-01 00:00:00",
    }
    zone = Zone.from_record(old)
    assert zone.ipaccess.addresses == () and zone.edge.compressionlevel == 6
    assert Zone.from_record(zone.to_record()) == zone


def test_hashid_is_stable_and_differs_per_zone() -> None:
    one = Zone(1, "a", "a", ORIGIN, created_at="2026-01-01 00:00:00")
    two = Zone(2, "a", "a", ORIGIN, created_at="2026-01-01 00:00:00")
    assert one.hashid() == one.with_changes(name="b").hashid() != two.hashid()


async def test_ten_thousand_and_one_form_files_is_413_and_purges_nothing(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    fields = [("_METHOD", "DELETE"), *(("files[]", f"/f{i}") for i in range(10_001))]
    async with Unchanged(api):
        response = await form(api, f"/zones/http/pull/{zone['id']}/purge", fields)
        assert_error(response, 413, "10000 files")
