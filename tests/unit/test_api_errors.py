"""Everything a client can get wrong (README, Zones): the documented status, an error answer
of the one shape naming what is wrong, and nothing changed — the zones are as before and
no event was emitted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from conftest import stored_key
from fastapi import FastAPI

from pullzone.bus.events import Event
from pullzone.control import errors
from pullzone.control.app import create_app
from pullzone.control.keys import ensure_admin_key, revoke_key
from pullzone.control.log import LocalLog
from pullzone.control.store import now
from pullzone.refusal import Reason, Refused

if TYPE_CHECKING:
    from conftest import ApiHarness

    from pullzone.config import Settings

ORIGIN = "http://origin.test"


def assert_error(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if status in (401, 403):  # 5centscdn's shape beside ours, the same message
        assert set(body) == {"result", "message", "status", "errors"}, body
        assert body["status"] == "error", body
        assert body["errors"] == [{"code": status, "message": body["message"]}], body
    else:
        assert set(body) == {"result", "message"}, body
    assert body["result"] == "error"
    message = body["message"]
    assert isinstance(message, str) and message
    assert "Traceback" not in message and len(message) <= 1000
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


class Unchanged:
    """`async with Unchanged(api)`: the zones and the events are the same after."""

    def __init__(self, api: ApiHarness) -> None:
        self.api = api

    async def __aenter__(self) -> None:
        self.zones = await self.api.zones()
        self.events = len(self.api.events)

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert await self.api.zones() == self.zones
            assert len(self.api.events) == self.events


@pytest.fixture()
async def zone(api: ApiHarness) -> dict[str, Any]:
    return await api.create(name="existing", cnames="taken.example.com")


async def post_raw(api: ApiHarness, path: str, content: bytes, ctype: str | None) -> httpx.Response:
    headers = {} if ctype is None else {"Content-Type": ctype}
    return await api.client.post(path, content=content, headers=headers)


# --- bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"name": "x", "origin": ', ("malformed JSON", "line 1")),
        (b"{'name': 'x'}", ("malformed JSON",)),
        (b'{"name": NaN, "origin": "http://o"}', ("malformed JSON",)),
        (b"\xff\xfe{", ("malformed JSON",)),
        (b"[1, 2]", ("JSON object",)),
        (b'"text"', ("JSON object",)),
        (b"null", ("JSON object",)),
        (b"", ("needs a body",)),
        (b"[" * 100_000, ("malformed JSON",)),
        (b'{"name": "x", "origin": "http://o", "id": ' + b"9" * 5000 + b"}", ("malformed JSON",)),
    ],
)
async def test_malformed_bodies_are_400(
    api: ApiHarness, zone: dict[str, Any], raw: bytes, words: tuple[str, ...]
) -> None:
    async with Unchanged(api):
        for path in ["/zones/http/pull/new", f"/zones/http/pull/{zone['id']}"]:
            assert_error(await post_raw(api, path, raw, "application/json"), 400, *words)
        response = await post_raw(api, f"/zones/http/pull/{zone['id']}/cache", raw, None)
        assert_error(response, 400, *words)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"origin": ORIGIN}, ("alias: required",)),
        ({"alias": "x"}, ("origin: is required",)),
        ({"alias": "x", "origin": ORIGIN, "optimize": "vod"}, ("optimize", "HTTP pull")),
        ({"alias": "x", "origin": ORIGIN, "_METHOD": "DELETE"}, ("_METHOD", "PUT")),
        ({"alias": "x", "origin": ORIGIN, "id": 3}, ("id: read-only",)),
        ({"name": "x"}, ("origin: is required",)),
        ({"name": 5, "origin": ORIGIN}, ("name: must be a string",)),
        ({"name": "x", "origin": ["http://o"]}, ("origin: must be a string",)),
        ({"name": "", "origin": ORIGIN}, ("name: must not be empty",)),
        ({"name": "x", "origin": ORIGIN, "cnames": ["a.example.com"]}, ("cnames",)),
        ({"name": "x", "origin": ORIGIN, "disabled": "yes"}, ("disabled: must be '0' or '1'",)),
        ({"name": "x", "origin": ORIGIN, "disabled": 2}, ("disabled",)),
        ({"name": "x", "origin": ORIGIN, "cache": "1h"}, ("cache: must be a JSON object",)),
        (
            {"name": "x", "origin": ORIGIN, "cache": {"querystring": "maybe"}},
            ("cache.querystring: must be 'Y' or 'N'",),
        ),
        ({"name": "x", "origin": ORIGIN, "cache": {"cache": "4 hours"}}, ("cache.cache", "30m")),
        ({"name": "x", "origin": ORIGIN, "cache": {"expiry": "1x"}}, ("cache.expiry",)),
        ({"name": "x", "origin": ORIGIN, "cache": {"cache": 3600}}, ("cache.cache: must be a st",)),
        (
            {"name": "x", "origin": ORIGIN, "cache": {"cache": "1h", "cacheInSecs": 60}},
            ("cacheInSecs", "3600"),
        ),
        ({"name": "x", "origin": ORIGIN, "hostHeader": None}, ("hostHeader: null",)),
        ({"name": "x", "origin": ORIGIN, "alias": "-bad-"}, ("alias",)),
        ({"name": "x", "origin": ORIGIN, "alias": "a" * 64}, ("alias",)),
        ({"name": "x", "origin": ORIGIN, "hostHeader": "a b"}, ("hostHeader",)),
        ({"name": "x", "origin": ORIGIN, "hostHeader": "h.test:0"}, ("hostHeader", "port")),
        ({"name": "x", "origin": ORIGIN, "_METHOD": "DELETE"}, ("_METHOD",)),
    ],
)
async def test_invalid_fields_are_400_naming_them(
    api: ApiHarness, zone: dict[str, Any], body: dict[str, Any], words: tuple[str, ...]
) -> None:
    async with Unchanged(api):
        assert_error(await api.client.post("/zones/http/pull/new", json=body), 400, *words)


async def test_unknown_fields_are_400_naming_them(api: ApiHarness, zone: dict[str, Any]) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            "/zones/http/pull/new", json={"name": "x", "origin": ORIGIN, "optimise": "http"}
        )
        assert_error(response, 400, "unknown field 'optimise'", "accepted: name")
        response = await api.client.post(
            f"/zones/http/pull/{zone['id']}", json={"cache": {"smart": "0"}}
        )
        assert_error(response, 400, "unknown field 'cache.smart'", "querystring")
        response = await api.client.post(f"/zones/http/pull/{zone['id']}/cache", json={"ttl": "1h"})
        assert_error(response, 400, "unknown field 'ttl'")
        response = await api.client.post(f"/zones/http/pull/{zone['id']}", json={"id": 7})
        assert_error(response, 400, "id: read-only")


@pytest.mark.parametrize(
    ("block", "value"),
    [
        ("edge", {"pseudostreaming": "Y"}),
    ],
)
async def test_a_block_switched_on_that_the_edge_does_not_apply_is_400_naming_it(
    api: ApiHarness, zone: dict[str, Any], block: str, value: dict[str, Any]
) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            "/zones/http/pull/new", json={"name": "x", "origin": ORIGIN, block: value}
        )
        assert_error(response, 400, block, "pullzone has no")
        for path, body in ((f"/{zone['id']}", {block: value}), (f"/{zone['id']}/{block}", value)):
            response = await api.client.post(f"/zones/http/pull{path}", json=body)
            assert_error(response, 400, block, "pullzone has no")


async def test_geoblock_switched_on_without_a_geoip_db_is_400_saying_so(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    value = {"enabled": "y", "list": ["US"]}
    async with Unchanged(api):
        response = await api.client.post(
            "/zones/http/pull/new", json={"name": "x", "origin": ORIGIN, "geoblock": value}
        )
        assert_error(response, 400, "geoblock.enabled", "--geoip-db")
        for path, body in (
            (f"/{zone['id']}", {"geoblock": value}),
            (f"/{zone['id']}/geoblock", value),
        ):
            response = await api.client.post(f"/zones/http/pull{path}", json=body)
            assert_error(response, 400, "geoblock.enabled", "no --geoip-db")
    # off, its list is stored all the same
    response = await api.client.post(f"/zones/http/pull/{zone['id']}/geoblock", json={"list": "FR"})
    assert response.status_code == 200, response.text
    assert response.json()["zone"]["geoblock"]["list"] == ["FR"]


@pytest.mark.parametrize(
    ("block", "value"),
    [
        ("domainlock", {"enabled": "Y", "list": "example.com", "noreferer": "Y"}),
        ("ipaccess", {"enabled": "1", "list": "10.0.0.0/8"}),
        ("useragent", {"enabled": "Y", "list": "curl,wget", "policy": "N"}),
    ],
)
async def test_an_access_block_switched_on_is_stored_and_active(
    api: ApiHarness, zone: dict[str, Any], block: str, value: dict[str, Any]
) -> None:
    response = await api.client.post(f"/zones/http/pull/{zone['id']}/{block}", json=value)
    assert response.status_code == 200, response.text
    answered = response.json()["zone"][block]
    assert answered["enabled"] == "Y"
    assert answered["active"] == "Y"


@pytest.mark.parametrize("block", ["eac", "waf", "edgerules"])
async def test_a_block_without_counterpart_is_400_when_on(
    api: ApiHarness, zone: dict[str, Any], block: str
) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            f"/zones/http/pull/{zone['id']}", json={block: {"enabled": "Y"}}
        )
        assert_error(response, 400, block, "no counterpart")


async def test_an_unsupported_block_must_be_an_object(api: ApiHarness) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            "/zones/http/pull/new", json={"name": "x", "origin": ORIGIN, "geoblock": "N"}
        )
        assert_error(response, 400, "geoblock: must be a JSON object")


@pytest.mark.parametrize(
    ("origin", "words"),
    [
        ("ftp://origin.test/", ("scheme 'ftp'",)),
        ("http://", ("no host",)),
        ("http:///path", ("no host",)),
        ("/relative/path", ("absolute URL",)),
        ("origin.test", ("absolute URL",)),
        ("http://user:secret@origin.test", ("user info",)),
        ("http://user@origin.test", ("user info",)),
        ("http://origin.test/#frag", ("fragment",)),
        ("http://origin.test/?a=1", ("query",)),
        ("http://origin.test:99999", ("port",)),
        ("http://origin.test:0", ("port",)),
        ("http://origin.test:/", ("port",)),
        ("http://bad host/", ("ASCII",)),
        ("http://exa mple.com", ("ASCII",)),
        ("http://-bad-.test", ("host",)),
        ("http://ünï.test", ("ASCII",)),
        ("javascript:alert(1)", ("scheme",)),
        ("", ("must not be empty",)),
        ("http://" + "a" * 3000 + ".test", ("at most",)),
    ],
)
async def test_invalid_origins_are_400(
    api: ApiHarness, zone: dict[str, Any], origin: str, words: tuple[str, ...]
) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            "/zones/http/pull/new", json={"name": "x", "origin": origin}
        )
        message = assert_error(response, 400, "origin", *words)
        assert "a" * 100 not in message  # never the whole input
        response = await api.client.post(f"/zones/http/pull/{zone['id']}", json={"origin": origin})
        assert_error(response, 400, "origin", *words)


async def test_huge_inputs_are_not_echoed(api: ApiHarness) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            "/zones/http/pull/new", json={"name": "n" * 500_000, "origin": ORIGIN}
        )
        message = assert_error(response, 400, "name", "at most 255")
        assert "nnnnnnnnnn" not in message
        response = await api.client.post(
            "/zones/http/pull/new",
            json={"name": "x", "origin": ORIGIN, "cnames": "x" * 500_000, "z" * 1000: 1},
        )
        message = assert_error(response, 400, "cnames")
        assert "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" not in message


@pytest.mark.parametrize(
    ("cnames", "words"),
    [
        ("a.example.com,A.example.com", ("listed twice",)),
        ("*.example.com", ("wildcard",)),
        ("under_score.example.com", ("not a valid host name",)),
        ("1.2.3", ("not a valid host name",)),
        ("[10.0.0.1]", ("not a valid host name",)),
        ("a..b", ("not a valid host name",)),
        ("http://a.example.com", ("not a valid host name",)),
        (",".join(f"h{i}.example.com" for i in range(101)), ("at most 100",)),
        (",".join(f"h{i}.example.com" for i in range(50_000)), ("at most 100",)),
        ("fe80::1%eth0", ("not a valid host name",)),
    ],
)
async def test_invalid_cnames_are_400(api: ApiHarness, cnames: str, words: tuple[str, ...]) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            "/zones/http/pull/new", json={"name": "x", "origin": ORIGIN, "cnames": cnames}
        )
        assert_error(response, 400, "cname", *words)


async def test_a_hostname_belongs_to_one_zone_only(api: ApiHarness, zone: dict[str, Any]) -> None:
    other = await api.create(name="other", alias="other")
    fqdn = zone["fqdn"]
    async with Unchanged(api):
        for body, words in [
            ({"cnames": "new.example.com,TAKEN.example.com"}, ("taken.example.com", "zone")),
            ({"cnames": fqdn}, (fqdn,)),  # another zone's fqdn
            ({"alias": zone["alias"]}, ("alias", "taken")),
        ]:
            response = await api.client.post(
                "/zones/http/pull/new", json={"name": "x", "origin": ORIGIN, **body}
            )
            assert_error(response, 400, *words)
            response = await api.client.post(f"/zones/http/pull/{other['id']}", json=body)
            assert_error(response, 400, *words)
        # a zone's own fqdn is not one of its cnames
        response = await api.client.post(
            f"/zones/http/pull/{other['id']}", json={"cnames": other["fqdn"]}
        )
        assert_error(response, 400, "own fqdn")
    # an alias whose fqdn another zone has as a cname
    await api.client.post(f"/zones/http/pull/{other['id']}", json={"cnames": "x.cdn.test"})
    async with Unchanged(api):
        response = await api.client.post(
            "/zones/http/pull/new", json={"name": "x", "origin": ORIGIN, "alias": "x"}
        )
        assert_error(response, 400, "x.cdn.test", "cname")
    # a derived alias steps around it
    assert (await api.create(name="x"))["alias"] == "x-2"


async def test_a_cache_derived_field_that_disagrees_changes_nothing(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    async with Unchanged(api):
        response = await api.client.post(
            f"/zones/http/pull/{zone['id']}/cache", json={"expiryInSecs": 5}
        )
        assert_error(response, 400, "expiryInSecs", "derived from expiry")
        response = await api.client.post(
            f"/zones/http/pull/{zone['id']}/cache", json={"cache": "1h", "cacheInMins": 30}
        )
        assert_error(response, 400, "cacheInMins", "60")


# --- content type and size -------------------------------------------------------------


@pytest.mark.parametrize("ctype", ["text/plain", "multipart/form-data; b=x", "application/xml"])
async def test_a_body_neither_json_nor_form_is_415_naming_both(
    api: ApiHarness, zone: dict[str, Any], ctype: str
) -> None:
    raw = json.dumps({"name": "x", "origin": ORIGIN}).encode()
    async with Unchanged(api):
        for path in ["/zones/http/pull/new", f"/zones/http/pull/{zone['id']}"]:
            assert_error(
                await post_raw(api, path, raw, ctype),
                415,
                "application/json",
                "application/x-www-form-urlencoded",
            )


async def test_json_sent_as_a_form_is_400_saying_so(api: ApiHarness, zone: dict[str, Any]) -> None:
    raw = json.dumps({"name": "x", "origin": ORIGIN}).encode()
    form = "application/x-www-form-urlencoded"
    async with Unchanged(api):
        for path in ["/zones/http/pull/new", f"/zones/http/pull/{zone['id']}"]:
            assert_error(
                await post_raw(api, path, raw, form), 400, "Content-Type: application/json"
            )


async def test_json_media_types_and_a_missing_content_type_are_read_as_json(
    api: ApiHarness,
) -> None:
    raw = json.dumps({"name": "x", "origin": ORIGIN}).encode()
    for ctype in ["application/json; charset=utf-8", "application/merge-patch+json", None]:
        response = await post_raw(api, "/zones/http/pull/new", raw, ctype)
        assert response.status_code == 200, response.text


async def test_a_body_over_1_mib_is_413(api: ApiHarness, zone: dict[str, Any]) -> None:
    raw = json.dumps({"name": "x", "origin": ORIGIN, "pad": " " * (1024 * 1024)}).encode()
    async with Unchanged(api):
        response = await post_raw(api, "/zones/http/pull/new", raw, "application/json")
        assert_error(response, 413, "1 MiB")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(20):
                yield b" " * 65536

        response = await api.client.post(
            f"/zones/http/pull/{zone['id']}",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 413, "1 MiB")


# --- zone ids, routes, methods ---------------------------------------------------------


@pytest.mark.parametrize(
    "zone_id", ["abc", "0", "-1", "99999999999999999999", "9223372036854775808", "1.5", "1e3", "٣"]
)
async def test_a_zone_id_that_is_not_a_positive_integer_is_400(
    api: ApiHarness, zone: dict[str, Any], zone_id: str
) -> None:
    async with Unchanged(api):
        for method, suffix, body in [
            ("GET", "", None),
            ("POST", "", {"name": "x"}),
            ("POST", "/cache", {"cache": "1h"}),
            ("DELETE", "", None),
        ]:
            response = await api.client.request(
                method, f"/zones/http/pull/{zone_id}{suffix}", json=body
            )
            assert_error(response, 400, "zone id must be a positive integer")


async def test_the_largest_zone_id_is_a_plain_404(api: ApiHarness) -> None:
    response = await api.client.get("/zones/http/pull/9223372036854775807")
    assert_error(response, 404, "zone 9223372036854775807 not found")


async def test_an_unknown_zone_is_404(api: ApiHarness, zone: dict[str, Any]) -> None:
    async with Unchanged(api):
        for method, suffix, body in [
            ("GET", "", None),
            ("POST", "", {"name": "x"}),
            ("POST", "/cache", {"cache": "1h"}),
            ("DELETE", "", None),
        ]:
            response = await api.client.request(method, f"/zones/http/pull/4242{suffix}", json=body)
            assert_error(response, 404, "zone 4242 not found")


@pytest.mark.parametrize(
    "path", ["/zones/vod", "/zones/http/push", "/zones/http/pull/1/nope", "/../etc/passwd", "/"]
)
async def test_an_unknown_route_is_404(api: ApiHarness, zone: dict[str, Any], path: str) -> None:
    async with Unchanged(api):
        assert_error(await api.client.get(path), 404, "no such route")
        assert_error(await api.client.post(path, json={}), 404, "no such route")


async def test_unknown_routes_outside_v2_are_404_too(api: ApiHarness) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(api.app), base_url="http://api.test"
    ) as client:
        assert_error(await client.get("/v1/zones"), 404, "no such route")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/zones/http/pull/{id}", "GET, POST, DELETE"),
        ("PATCH", "/zones/http/pull/{id}", "GET, POST, DELETE"),
        ("DELETE", "/zones/http/pull", "GET"),
        ("POST", "/zones/http/pull", "GET"),
        ("GET", "/zones/http/pull/{id}/cache", "POST"),
        ("DELETE", "/zones/http/pull/new", "POST"),
        ("GET", "/zones/http/pull/new", "POST"),
    ],
)
async def test_a_wrong_method_is_405_with_allow(
    api: ApiHarness, zone: dict[str, Any], method: str, path: str, allow: str
) -> None:
    async with Unchanged(api):
        response = await api.client.request(method, path.format(id=zone["id"]), json={})
        assert_error(response, 405, method, "not allowed")
        assert response.headers["allow"] == allow


# --- keys ------------------------------------------------------------------------------


async def test_a_missing_or_unknown_key_is_401_on_every_route(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    zone_path = f"/zones/http/pull/{zone['id']}"
    calls = [
        ("GET", "/zones/http/pull", None),
        ("POST", "/zones/http/pull/new", {"name": "x", "origin": ORIGIN}),
        ("GET", zone_path, None),
        ("POST", zone_path, {"name": "x"}),
        ("POST", zone_path + "/cache", {"cache": "1h"}),
        ("DELETE", zone_path, None),
    ]
    async with Unchanged(api):
        for key, words in [(None, "missing X-API-Key"), ("", "missing"), ("nope", "unknown")]:
            async with api.client_with(key) as client:
                for method, path, body in calls:
                    response = await client.request(method, path, json=body)
                    assert_error(response, 401, words)


async def test_the_key_is_checked_before_the_body(api: ApiHarness, zone: dict[str, Any]) -> None:
    async with Unchanged(api), api.client_with("wrong") as client:
        for raw, ctype in [(b"{", "application/json"), (b"a=b", "text/plain")]:
            response = await client.post(
                f"/zones/http/pull/{zone['id']}", content=raw, headers={"Content-Type": ctype}
            )
            assert_error(response, 401)


async def test_a_revoked_key_is_401(api: ApiHarness) -> None:
    key, info = stored_key(api.app.state.control.conn, "gone")
    async with api.client_with(key) as client:
        assert (await client.get("/zones/http/pull")).status_code == 200
        assert revoke_key(api.app.state.control.conn, info.id, now())
        assert_error(await client.get("/zones/http/pull"), 401, "revoked")


async def test_out_of_scope_is_403_before_the_body_is_read(
    api: ApiHarness, zone: dict[str, Any]
) -> None:
    key, _ = stored_key(api.app.state.control.conn, "other", zones=[zone["id"] + 100])
    async with Unchanged(api), api.client_with(key) as client:
        response = await client.post(
            f"/zones/http/pull/{zone['id']}",
            content=b"{",
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 403, f"zone {zone['id']}")


# --- server faults ---------------------------------------------------------------------


async def test_a_failing_on_event_is_a_500_without_details(api_settings: Settings) -> None:
    async def explode(event: Event) -> None:
        raise RuntimeError("secret internals /var/lib/x")

    app = create_app(api_settings, LocalLog(api_settings, explode))
    ensure_admin_key(app.state.control.conn, api_settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app, raise_app_exceptions=False),
        base_url="http://api.test/v2",
        headers={"X-API-Key": api_settings.admin_key or ""},
    ) as client:
        response = await client.post("/zones/http/pull/new", json={"name": "x", "origin": ORIGIN})
        message = assert_error(response, 500, "saved")
        assert "secret" not in message and "RuntimeError" not in message


async def test_a_bug_is_a_generic_500(api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> list[object]:
        raise KeyError("internal detail")

    monkeypatch.setattr(api.app.state.control.zones, "list", broken)
    async with api.client_with(api.settings.admin_key, raise_app_exceptions=False) as client:
        response = await client.get("/zones/http/pull")
        message = assert_error(response, 500, "internal error")
        assert "internal detail" not in message and "KeyError" not in message


@pytest.mark.parametrize("reason", list(Reason))
async def test_a_domain_refusal_is_an_error_answer_with_its_status(reason: Reason) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/refuse")
    async def refuse() -> None:
        raise Refused(reason, f"refused: {reason.value}")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://api.test"
    ) as client:
        response = await client.get("/refuse")
    assert_error(response, errors.STATUS_OF_REFUSAL[reason], f"refused: {reason.value}")


# --- the OpenAPI document --------------------------------------------------------------


async def test_openapi_needs_no_key_and_documents_every_route(api: ApiHarness) -> None:
    async with api.client_with(None) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert set(paths) >= {
        "/v2/zones/http/pull",
        "/v2/zones/http/pull/new",
        "/v2/zones/http/pull/{zoneid}",
        "/v2/zones/http/pull/{zoneid}/cache",
        "/v2/zones/http/pull/{zoneid}/purge",
        "/v2/zones/http/pull/{zoneid}/purges",
    }
    assert set(paths["/v2/zones/http/pull/{zoneid}"]) == {"get", "post", "delete"}
    schemas = spec["components"]["schemas"]
    for path_item in paths.values():
        for operation in path_item.values():
            assert "422" not in operation["responses"]
            assert operation["security"] == [{"APIKeyHeader": []}]
            body = operation.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                if "$ref" in schema:
                    assert schema["$ref"].rsplit("/", 1)[1] in schemas
                else:
                    assert schema["type"] == "object"
    assert "HTTPValidationError" not in schemas
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    zone_schema = schemas["ZoneOut"]["properties"]
    assert {"id", "alias", "fqdn", "cnamesArr", "hostHeader", "cache"} <= set(zone_schema)
    assert schemas["ZoneCreate"]["required"] == ["origin"]
    assert schemas["ZoneCreate"]["additionalProperties"] is False
    zoneid = paths["/v2/zones/http/pull/{zoneid}"]["get"]["parameters"][0]
    assert zoneid["schema"]["type"] == "integer" and zoneid["schema"]["minimum"] == 1
