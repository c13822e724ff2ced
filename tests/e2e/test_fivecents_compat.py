"""5centscdn compatibility: each example of 5centscdn's API reference
(tests/compat/fivecents_reference.json) replayed against a real `pullzone serve`, as JSON
and form-encoded the way a PHP client sends it, with only ids (and the origin) substituted;
then the bad-input rules of the contract. Each answer field of an example is checked
against FIELDS: "same type" (present, same JSON type) or "not supported: why"."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from certs_support import Pem, issued
from compat.php_form import FORM, encode
from origin import Origin
from server import Server

REFERENCE = json.loads(
    (Path(__file__).parent.parent / "compat" / "fivecents_reference.json").read_text()
)
ROUTES: dict[str, dict[str, Any]] = {r["id"]: r for r in REFERENCE["routes"]}
ZONES = "/zones/http/pull"
JSON = "application/json"

SAME = "same type"


def no(why: str) -> str:
    return f"not supported: {why}"


NO_EDGE_RULES = no("pullzone has no edge rules; caching follows the cache block and RFC 9111")
ORIGINIP = no("answered inside originip (docs/zones.md), not at the top level")
EAC = no("external authentication: accepted switched off, not stored (docs/zones.md)")
UNDOCUMENTED = no("not described on the pages read; pullzone has no meaning for it")

# Every field of the example zone answers, by path. Blocks pullzone stores and answers
# (the contract's list) are "same type" down to their fields.
ZONE_FIELDS: dict[str, str] = {
    "type": SAME,
    "id": SAME,
    "serviceid": SAME,
    "alias": SAME,
    "hashid": SAME,
    "mode": SAME,
    "optimize": SAME,
    "optimizer": UNDOCUMENTED,
    "origin": SAME,
    "backup": SAME,
    "cnames": SAME,
    "live": UNDOCUMENTED,
    "wafid": no("pullzone has no WAF"),
    "edgeruleids": NO_EDGE_RULES,
    "dnscheck": no("5centscdn's originip option; pullzone has none"),
    "ip": ORIGINIP,
    "customhostheader": ORIGINIP,
    "iswordpress": no("WordPress integration"),
    "awsSignatureV4": no("pullzone does not sign origin requests"),
    "disabled": SAME,
    "created_at": SAME,
    "updated_at": SAME,
    "deleted": no("a deleted zone is gone (404); it is never answered"),
    "router": UNDOCUMENTED,
    "remaining": UNDOCUMENTED,
    "status": SAME,
    "name": SAME,
    "fqdn": SAME,
    "fqdnVoD": no("VoD zones only (the create example is the VoD page's)"),
    "ssl": SAME,
    "ssl.http": UNDOCUMENTED,
    "ssl.http2": SAME,
    "ssl.redirect": SAME,
    "ssl.mode": SAME,
    "ssl.certid": "type: integer or null (pullzone answers 0 for none, 5centscdn null)",
    "ssl.zerossl": no("5centscdn's ZeroSSL order; pullzone's own orders report in ssl.warning"),
    "ssl.enabled": SAME,
    "ssl.warning": "type: boolean or string (pullzone: the reason HTTPS is not served, or '')",
    "cnamesArr": SAME,
    "cnamesArrFqdn": SAME,
    "waf": no("pullzone has no WAF"),
    "defaultBehaviors": NO_EDGE_RULES,
    "edgeRules": NO_EDGE_RULES,
    "edgerules": NO_EDGE_RULES,
    "edgerules.enabled": NO_EDGE_RULES,
    "waf.enabled": no("pullzone has no WAF"),
    "behaviorId": NO_EDGE_RULES,
    "modeI": UNDOCUMENTED,
    "originip": SAME,
    "originip.enabled": SAME,
    "baseDirectory": no("not described on the pages read; pullzone's origin path is a prefix"),
    "hostHeader": SAME,
    "shield": SAME,
    "shield.network": SAME,
    "shield.enabled": SAME,
    "edge": SAME,
    **{
        f"edge.{name}": SAME
        for name in (
            "compression",
            "compressionlevel",
            "disposition",
            "stripcookie",
            "xff",
            "cors",
            "webp",
            "pseudostreaming",
            "wp",
            "lfo",
            "prefresh",
        )
    },
    "proxied": UNDOCUMENTED,
    "origin_auth": no("pullzone does not authenticate to origins"),
    "origin_auth.type": no("pullzone does not authenticate to origins"),
    "domainlock": SAME,
    **{f"domainlock.{n}": SAME for n in ("enabled", "policy", "list", "ips", "noreferer")},
    "domainlock.active": SAME,
    "domainlock.type": UNDOCUMENTED,
    "geoblock": SAME,
    **{f"geoblock.{n}": SAME for n in ("enabled", "policy", "list", "ips")},
    "geoblock.active": SAME,
    "securetoken": SAME,
    **{
        f"securetoken.{n}": SAME
        for n in ("enabled", "policy", "keyip", "list", "timeout", "session", "ips")
    },
    "securetoken.dirs": UNDOCUMENTED,
    "securetoken.active": SAME,
    "eac": EAC,
    **{f"eac.{n}": EAC for n in ("policy", "list", "ips", "enabled", "active")},
    "cache": SAME,
    "cache.smart": UNDOCUMENTED,
    **{
        f"cache.{n}": SAME
        for n in (
            "cache",
            "expiry",
            "querystring",
            "cachecontrol",
            "usestale",
            "revalidate",
            "cacheInSecs",
            "cacheInMins",
            "expiryInSecs",
            "expiryInMins",
        )
    },
}
KEY_FIELDS: dict[str, str] = {
    "id": SAME,
    "serviceid": SAME,
    "name": SAME,
    "description": SAME,
    "permission": SAME,
    "hash": no("the key itself: only in the answer that creates it, keys are stored hashed"),
}
CERT_FIELDS: dict[str, str] = {
    name: SAME
    for name in (
        "id",
        "name",
        "crt",
        "key",
        "cabundle",
        "domain",
        "sans",
        "expiry",
        "installs",
        "expired",
        "validFrom",
    )
}
# What pullzone answers each example of the reference, and why where it is not the page's.
OUTCOMES: dict[str, str] = {
    "zone-create": "200 'Zone Created' (the VoD page says 'Zone updated successfully'; the "
    "HTTP push create page and docs/api.md say 'Zone Created')",
    "zone-get": "200",
    "zone-update": "200 'Zone updated successfully' (the page shows no message)",
    "zone-cache": "200, the page's message",
    "zone-ssl": "200, the page's message",
    "zone-originip": "200, the page's message: originip switched on (`dnscheck` accepted, "
    "not stored)",
    "zone-ipaccess": "200, the page's message: ipaccess switched on (`mode` ignored)",
    "zone-purge": "200, the page's answer",
    "zones-list": "200, every zone (the page shows no answer)",
    "auth-errors": "401 and 403 carry the page's status and errors besides result and message",
    "key-create": "200, the page's message",
    "key-list": "200",
    "key-delete": "200, the page's answer",
    "ssl-create": "200, the page's message",
    "ssl-update": "200, the page's message",
}
# The blocks the contract says every zone answer carries.
BLOCKS = ("ssl", "edge", "securetoken", "domainlock", "geoblock", "ipaccess", "useragent")
BLOCKS += ("bwlimit", "originip", "shield", "backup")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "array" if isinstance(value, list) else "object"


def paths(example: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every field of `example` by dotted path, objects descended into."""
    for name, value in example.items():
        yield prefix + name, value
        if isinstance(value, dict):
            yield from paths(value, f"{prefix}{name}.")


def lookup(answer: dict[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = answer
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def check_fields(ours: dict[str, Any], example: dict[str, Any], table: dict[str, str]) -> None:
    """Every field of `example` the table supports is in `ours` with the right type."""
    wrong = []
    for path, value in paths(example):
        rule = table[path]
        if rule.startswith("not supported"):
            continue
        found, mine = lookup(ours, path)
        if not found:
            wrong.append(f"{path}: missing")
            continue
        allowed = rule.removeprefix("type: ").split(" (")[0].split(" or ")
        allowed = [json_type(value)] if rule == SAME else allowed
        if json_type(mine) not in allowed:
            wrong.append(f"{path}: {json_type(mine)} {mine!r}, want {' or '.join(allowed)}")
    assert not wrong, "; ".join(wrong)


def error(response: httpx.Response, status: int | None = None, *words: str) -> str:
    """A 4xx in pullzone's shape; its message names each of `words` (any case)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["result"] == "error", body
    message = body["message"]
    assert isinstance(message, str) and message, body
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    return message


# --- the server and what tests make -----------------------------------------------------

_names = itertools.count(1)


@pytest.fixture(scope="module")
def fc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("fivecents") / "data", "--origin-timeout", "2").start()
    yield s
    s.stop()


class Made:
    """Zones, keys and certificates a test made, deleted after it (examples reuse the
    same alias, cnames and names)."""

    def __init__(self, server: Server, origin: Origin) -> None:
        self.server, self.origin = server, origin
        self.zones: list[int] = []
        self.keys: list[Any] = []
        self.certs: list[int] = []

    def zone(self, **fields: Any) -> dict[str, Any]:
        zone = self.server.create_zone(self.origin.url, alias=f"fc{next(_names)}", **fields)
        self.zones.append(int(zone["id"]))
        return zone

    def cert(self, pem: Pem) -> int:
        body = {"crt": pem.crt, "key": pem.key, "cabundle": pem.cabundle}
        made = self.server.api.post("/account/ssl/new", json=body)
        assert made.status_code == 200, made.text
        self.certs.append(int(made.json()["cert"]["id"]))
        return self.certs[-1]

    def clean(self) -> None:
        api = self.server.api
        for zone_id in self.zones:
            api.delete(f"{ZONES}/{zone_id}")
        for key_id in self.keys:
            api.delete(f"/account/api/{key_id}")
        for cert_id in self.certs:
            api.delete(f"/account/ssl/{cert_id}")


@pytest.fixture()
def made(fc: Server, origin: Origin) -> Iterator[Made]:
    m = Made(fc, origin)
    yield m
    m.clean()


@pytest.fixture(scope="module")
def pem() -> Pem:
    return issued("example.com", "www.example.com", intermediate=True)


def send(
    server: Server, method: str, path: str, body: dict[str, Any] | None, encoding: str
) -> httpx.Response:
    """`body` as JSON or as a PHP form; `path` relative to /v2."""
    if body is None:
        return server.api.request(method, path)
    if encoding == "json":
        return server.api.request(method, path, json=body)
    return server.api.request(method, path, content=encode(body), headers={"Content-Type": FORM})


def read_zone(server: Server, zone_id: int) -> dict[str, Any]:
    got = server.api.get(f"{ZONES}/{zone_id}")
    assert got.status_code == 200, got.text
    return dict(got.json()["zone"])


def route_path(route: dict[str, Any]) -> str:
    return str(route["path"]).removeprefix("/v2")


def encodings(*route_ids: str) -> list[Any]:
    return [
        pytest.param(rid, enc, id=f"{rid}-{enc}") for rid in route_ids for enc in ("json", "form")
    ]


def bodiless(route_id: str) -> list[Any]:
    return [pytest.param(route_id, "none", id=route_id)]


# --- the reference's own consistency ----------------------------------------------------


def test_the_tables_cover_every_example_field() -> None:
    zone_examples = [
        r["answer"]["zone"] for r in ROUTES.values() if "zone" in (r.get("answer") or {})
    ]
    tables = [(z, ZONE_FIELDS) for z in zone_examples]
    tables += [(k, KEY_FIELDS) for k in ROUTES["key-list"]["answer"]["apikeys"]]
    tables += [(ROUTES[r]["answer"]["cert"], CERT_FIELDS) for r in ("ssl-create", "ssl-update")]
    missing = [p for example, t in tables for p, _ in paths(example) if p not in t]
    assert not missing, f"fields of the examples the tables do not cover: {missing}"
    # "same type" needs a type to compare with: a null example needs an explicit type.
    untyped = [p for e, t in tables for p, v in paths(e) if v is None and t[p] == SAME]
    assert not untyped, untyped
    assert all(r["page"].startswith("https://") for r in ROUTES.values())
    assert set(OUTCOMES) == set(ROUTES)


# --- the zone examples ------------------------------------------------------------------


@pytest.mark.parametrize(("rid", "encoding"), encodings("zone-create"))
def test_create_example(fc: Server, made: Made, rid: str, encoding: str) -> None:
    route = ROUTES[rid]
    body = {**route["request"], "origin": made.origin.url}
    answer = send(fc, "POST", route_path(route), body, encoding)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    made.zones.append(int(got["zone"]["id"]))
    # The VoD page says "Zone updated successfully"; pullzone and the HTTP push page say:
    assert (got["result"], got["message"]) == ("success", "Zone Created")
    zone = got["zone"]
    check_fields(zone, route["answer"]["zone"], ZONE_FIELDS)
    assert (zone["alias"], zone["name"], zone["origin"]) == (
        "my-vod-pull-zone",
        "my-vod-pull-zone",  # name defaults to alias
        made.origin.url,
    )
    assert (zone["optimize"], zone["cnames"], zone["cache"]["cache"]) == (
        "http",
        "cdn.example.com",
        "1d",
    )
    assert zone["ssl"]["http2"] == "Y"
    for block in ("domainlock", "geoblock", "bwlimit", "ipaccess", "securetoken", "useragent"):
        assert zone[block]["enabled"] == "N", (block, zone[block])
    assert zone["securetoken"]["policy"] == "Q" and zone["useragent"]["casesensitive"] == "N"
    assert read_zone(fc, zone["id"]) == zone


@pytest.mark.parametrize(("rid", "encoding"), bodiless("zone-get"))
def test_get_example(fc: Server, made: Made, rid: str, encoding: str) -> None:
    zone_id = made.zone()["id"]
    answer = send(fc, "GET", route_path(ROUTES[rid]).format(zoneid=zone_id), None, encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "success"
    check_fields(answer.json()["zone"], ROUTES[rid]["answer"]["zone"], ZONE_FIELDS)


@pytest.mark.parametrize(("rid", "encoding"), encodings("zone-update"))
def test_update_example(fc: Server, made: Made, rid: str, encoding: str) -> None:
    zone_id = made.zone()["id"]
    body = {**ROUTES[rid]["request"], "origin": made.origin.url + "/example"}
    answer = send(fc, "POST", f"{ZONES}/{zone_id}", body, encoding)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["result"], got["message"]) == ("success", "Zone updated successfully")
    check_fields(got["zone"], ROUTES[rid]["answer"]["zone"], ZONE_FIELDS)
    assert (got["zone"]["cnames"], got["zone"]["cnamesArr"]) == (
        "docs.example.com",
        ["docs.example.com"],
    )
    assert got["zone"]["origin"] == made.origin.url + "/example"
    assert read_zone(fc, zone_id) == got["zone"]


def _block_route(fc: Server, made: Made, rid: str, encoding: str, **sub: Any) -> dict[str, Any]:
    zone_id = made.zone()["id"]
    route = ROUTES[rid]
    body = {**route["request"], **sub}
    answer = send(fc, "POST", route_path(route).format(zoneid=zone_id), body, encoding)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["result"], got["message"]) == ("success", route["answer"]["message"])
    check_fields(got["zone"], route["answer"]["zone"], ZONE_FIELDS)
    assert read_zone(fc, zone_id) == got["zone"]
    return dict(got["zone"])


@pytest.mark.parametrize(("rid", "encoding"), encodings("zone-cache"))
def test_cache_example(fc: Server, made: Made, rid: str, encoding: str) -> None:
    cache = _block_route(fc, made, rid, encoding)["cache"]
    assert (cache["cache"], cache["expiry"], cache["cacheInMins"], cache["expiryInMins"]) == (
        "1h",
        "1d",
        60,
        1440,
    )


@pytest.mark.parametrize(("rid", "encoding"), encodings("zone-ssl"))
def test_ssl_example(fc: Server, made: Made, pem: Pem, rid: str, encoding: str) -> None:
    cert_id = made.cert(pem)
    ssl = _block_route(fc, made, rid, encoding, certid=cert_id)["ssl"]
    assert (ssl["certid"], ssl["http2"], ssl["redirect"], ssl["enabled"]) == (
        cert_id,
        "Y",
        "N",
        "N",
    )


@pytest.mark.parametrize(
    ("rid", "encoding", "block"),
    [
        pytest.param(rid, enc, block, id=f"{rid}-{enc}")
        for rid, block in (("zone-originip", "originip"), ("zone-ipaccess", "ipaccess"))
        for enc in ("json", "form")
    ],
)
def test_examples_that_switch_a_block_on(
    fc: Server, made: Made, rid: str, encoding: str, block: str
) -> None:
    """Both examples switch the block on, which the edge applies: stored as sent and
    answered on."""
    zone_id = made.zone()["id"]
    route = ROUTES[rid]
    answer = send(fc, "POST", route_path(route).format(zoneid=zone_id), route["request"], encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Zone updated successfully"
    stored = read_zone(fc, zone_id)[block]
    assert stored == answer.json()["zone"][block]
    assert stored["enabled"] == "Y"
    for name in ("ip", "customhostheader", "list", "ips"):
        if name in route["request"]:
            assert stored[name] == route["request"][name], (name, stored)


@pytest.mark.parametrize(("rid", "encoding"), encodings("zone-ipaccess"))
def test_a_block_switched_off_is_stored_and_answered(
    fc: Server, made: Made, rid: str, encoding: str
) -> None:
    zone_id = made.zone()["id"]
    body = {**ROUTES[rid]["request"], "enabled": "N"}
    answer = send(fc, "POST", f"{ZONES}/{zone_id}/ipaccess", body, encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Zone updated successfully"
    ipaccess = answer.json()["zone"]["ipaccess"]
    assert (ipaccess["enabled"], ipaccess["list"], ipaccess["ips"]) == (
        "N",
        "1.2.3.4,5.6.7.8",
        "192.168.1.1",
    )
    assert read_zone(fc, zone_id)["ipaccess"] == ipaccess


# The blocks no HTTP pull block page of the index shows: their state as the create
# example (domainlock ... useragent) or the GET example (shield, edge) has it; then a
# change that switches something on, and the word of the 400 when pullzone refuses it
# (None: applied at the edge, so stored).
BLOCK_STATES: dict[str, tuple[dict[str, Any], dict[str, Any], str | None]] = {
    **{
        block: (ROUTES["zone-create"]["request"][block], {"enabled": "Y"}, None)
        for block in ("domainlock", "bwlimit", "useragent")
    },
    # this server has no --geoip-db: it knows no client's country
    "geoblock": (ROUTES["zone-create"]["request"]["geoblock"], {"enabled": "Y"}, "--geoip-db"),
    # the example's secret is empty: anyone could sign
    "securetoken": (
        ROUTES["zone-create"]["request"]["securetoken"],
        {"enabled": "Y"},
        "securetoken.list",
    ),
    "shield": (ROUTES["zone-get"]["answer"]["zone"]["shield"], {"enabled": "Y"}, None),
    "edge": (ROUTES["zone-get"]["answer"]["zone"]["edge"], {"lfo": "Y"}, None),
}


@pytest.mark.parametrize("block", list(BLOCK_STATES))
def test_block_routes(fc: Server, made: Made, block: str) -> None:
    """`POST …/{id}/{block}`: switched off it is stored and answered; switched on it is
    stored when the edge applies it, else a 400 naming what is missing, nothing changed."""
    zone_id = made.zone()["id"]
    off, on, refusal = BLOCK_STATES[block]
    answer = fc.api.post(f"{ZONES}/{zone_id}/{block}", json=off)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Zone updated successfully"
    stored = answer.json()["zone"][block]
    for name, value in off.items():
        if value not in ([], ""):  # empty values may be answered in the block's own form
            assert stored[name] == value, (name, stored)
    before = read_zone(fc, zone_id)
    switched = fc.api.post(f"{ZONES}/{zone_id}/{block}", json={**off, **on})
    if refusal is None:
        assert switched.status_code == 200, switched.text
        now = read_zone(fc, zone_id)[block]
        assert all(now[name] == value for name, value in on.items()), now
    else:
        error(switched, 400, refusal)
        assert read_zone(fc, zone_id) == before


@pytest.mark.parametrize(("rid", "encoding"), encodings("zone-purge"))
def test_purge_example(fc: Server, made: Made, rid: str, encoding: str) -> None:
    zone_id = made.zone()["id"]
    route = ROUTES[rid]
    answer = send(fc, "POST", route_path(route).format(zoneid=zone_id), route["request"], encoding)
    assert answer.status_code == 200, answer.text
    assert {k: answer.json()[k] for k in route["answer"]} == route["answer"]
    [entry] = fc.api.get(f"{ZONES}/{zone_id}/purges").json()["purges"]
    assert entry["delete"] is True, entry  # ?delete=true: a hard purge
    assert sorted(entry["files"]) == sorted(route["request"]["files"]), entry


@pytest.mark.parametrize(("rid", "encoding"), bodiless("zones-list"))
def test_zones_list(fc: Server, made: Made, rid: str, encoding: str) -> None:
    ids = {made.zone()["id"], made.zone()["id"]}
    answer = send(fc, "GET", route_path(ROUTES[rid]), None, encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "success"
    # The page shows no answer: pullzone's is GET /v2/zones/http/pull's, every zone.
    listed = answer.json()["zones"]
    assert ids <= {z["id"] for z in listed}
    assert {z["id"] for z in listed} == {z["id"] for z in fc.api.get(ZONES).json()["zones"]}


def test_auth_errors(fc: Server, made: Made) -> None:
    examples = ROUTES["auth-errors"]["answers"]
    for name, headers in (("401-missing", {"X-API-Key": ""}), ("401-invalid", {"X-API-Key": "x"})):
        answer = fc.api.get("/zones", headers=headers)
        error(answer, 401)
        _status_errors(answer.json(), examples[name])
    key = fc.api.post("/keys", json={"name": "fc-purge", "purge_only": True})
    assert key.status_code == 200, key.text
    forbidden = fc.api.post(
        f"{ZONES}/new",
        json={"alias": "fc-forbidden", "origin": made.origin.url},
        headers={"X-API-Key": key.json()["secret"]},
    )
    error(forbidden, 403)
    _status_errors(forbidden.json(), examples["403"])
    fc.api.delete(f"/keys/{key.json()['key']['id']}")


def _status_errors(body: dict[str, Any], example: dict[str, Any]) -> None:
    assert body["status"] == example["status"] == "error", body
    [mine], [theirs] = body["errors"], example["errors"]
    assert (mine["code"], mine["message"]) == (theirs["code"], body["message"]), body


# --- the key and certificate examples ---------------------------------------------------


def _make_key(fc: Server, made: Made, encoding: str = "json") -> int:
    route = ROUTES["key-create"]
    answer = send(fc, "POST", route_path(route), route["request"], encoding)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert {k: got[k] for k in ("result", "message")} == {
        "result": "success",
        "message": route["answer"]["message"],
    }
    assert json_type(got["id"]) == json_type(route["answer"]["id"]), got
    made.keys.append(got["id"])
    return int(got["id"])


@pytest.mark.parametrize(("rid", "encoding"), encodings("key-create"))
def test_key_create_example(fc: Server, made: Made, rid: str, encoding: str) -> None:
    key_id = _make_key(fc, made, encoding)
    [entry] = [k for k in fc.api.get("/account/api").json()["apikeys"] if k["id"] == key_id]
    assert (entry["name"], entry["description"], sorted(entry["permission"])) == (
        "My Application",
        "Used by the mobile app",
        ["read", "update"],
    )


@pytest.mark.parametrize(("rid", "encoding"), bodiless("key-list"))
def test_key_list_example(fc: Server, made: Made, rid: str, encoding: str) -> None:
    key_id = _make_key(fc, made)
    answer = send(fc, "GET", route_path(ROUTES[rid]), None, encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "success"
    [entry] = [k for k in answer.json()["apikeys"] if k["id"] == key_id]
    check_fields(entry, ROUTES[rid]["answer"]["apikeys"][0], KEY_FIELDS)


@pytest.mark.parametrize(("rid", "encoding"), encodings("key-delete"))
def test_key_delete_example(fc: Server, made: Made, rid: str, encoding: str) -> None:
    key_id = _make_key(fc, made)
    route = ROUTES[rid]
    path = route_path(route).format(apikeyid=key_id)
    answer = send(fc, route["method"], path, route["request"], encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json() == route["answer"]
    assert key_id not in {k["id"] for k in fc.api.get("/account/api").json()["apikeys"]}


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_key_delete_by_method_override(fc: Server, made: Made, encoding: str) -> None:
    """`_METHOD: DELETE` in a POST deletes a key, as the DELETE example's body says."""
    key_id = _make_key(fc, made)
    answer = send(fc, "POST", f"/account/api/{key_id}", {"_METHOD": "DELETE"}, encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == ROUTES["key-delete"]["answer"]["message"]
    assert key_id not in {k["id"] for k in fc.api.get("/account/api").json()["apikeys"]}


def _with_pem(request: dict[str, Any], pem: Pem) -> dict[str, Any]:
    return {**request, "crt": pem.crt, "key": pem.key, "cabundle": pem.cabundle}


@pytest.mark.parametrize(("rid", "encoding"), encodings("ssl-create"))
def test_ssl_create_example(fc: Server, made: Made, pem: Pem, rid: str, encoding: str) -> None:
    route = ROUTES[rid]
    answer = send(fc, "POST", route_path(route), _with_pem(route["request"], pem), encoding)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    made.certs.append(int(got["cert"]["id"]))
    assert (got["result"], got["message"]) == ("success", route["answer"]["message"])
    check_fields(got["cert"], route["answer"]["cert"], CERT_FIELDS)
    cert = got["cert"]
    assert (cert["name"], cert["domain"], cert["key"]) == (
        "sample-ssl-certificate",
        "example.com",
        "--- redacted ---",
    )
    assert sorted(cert["sans"]) == ["example.com", "www.example.com"]


@pytest.mark.parametrize(("rid", "encoding"), encodings("ssl-update"))
def test_ssl_update_example(fc: Server, made: Made, pem: Pem, rid: str, encoding: str) -> None:
    cert_id = made.cert(pem)
    route = ROUTES[rid]
    renewed = issued("example.com", "www.example.com", intermediate=True)
    path = route_path(route).format(sslcertid=cert_id)
    answer = send(fc, "POST", path, _with_pem(route["request"], renewed), encoding)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["result"], got["message"]) == ("success", route["answer"]["message"])
    check_fields(got["cert"], route["answer"]["cert"], CERT_FIELDS)
    assert (got["cert"]["id"], got["cert"]["name"]) == (cert_id, "sample-ssl-certificate")
    assert got["cert"]["crt"].strip() == renewed.crt.strip()


# --- the contract beyond the examples ---------------------------------------------------


def test_zone_answers_carry_the_contract_fields(fc: Server, made: Made) -> None:
    first = made.zone()
    second = made.zone()
    for zone in (first, read_zone(fc, first["id"])):
        basic = ("id", "type", "mode", "alias", "name", "origin", "hostHeader", "cnames")
        basic += ("cnamesArr", "fqdn", "disabled", "status", "created_at", "updated_at")
        assert not [f for f in (*basic, "cache", "warnings") if f not in zone], zone
        assert json_type(zone["serviceid"]) == "integer"
        assert isinstance(zone["hashid"], str) and zone["hashid"]
        assert zone["optimize"] == "http"
        assert zone["fqdn"] in zone["cnamesArrFqdn"], zone["cnamesArrFqdn"]
        assert all(isinstance(name, str) for name in zone["cnamesArrFqdn"])
        assert (zone["cache"]["cacheInMins"], zone["cache"]["expiryInMins"]) == (240, 0)
        assert zone["hostHeader"] in (
            urlsplit(made.origin.url).hostname,
            urlsplit(made.origin.url).netloc,
        )
        missing = [b for b in BLOCKS if b not in zone]
        assert not missing, f"blocks missing: {missing}"
        assert all(json_type(zone[b]) == "object" for b in BLOCKS if b != "backup"), zone
        backup_example = ROUTES["zone-get"]["answer"]["zone"]["backup"]
        assert json_type(zone["backup"]) == json_type(backup_example), zone["backup"]
        warnings = zone["warnings"]
        assert warnings is None or all(isinstance(w, str) for w in warnings), warnings
    assert first["serviceid"] == second["serviceid"]
    assert first["hashid"] != second["hashid"]
    changed = fc.api.post(f"{ZONES}/{first['id']}", json={"cnames": "fc-hash.example.com"})
    assert changed.status_code == 200, changed.text
    assert (
        changed.json()["zone"]["hashid"] == first["hashid"] == read_zone(fc, first["id"])["hashid"]
    )


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_create_needs_alias_and_origin_only(fc: Server, made: Made, encoding: str) -> None:
    alias = f"fc-only-{encoding}"
    body = {"alias": alias, "origin": made.origin.url}
    answer = send(fc, "POST", f"{ZONES}/new", body, encoding)
    assert answer.status_code == 200, answer.text
    zone = answer.json()["zone"]
    made.zones.append(int(zone["id"]))
    assert (zone["alias"], zone["name"], zone["origin"]) == (alias, alias, made.origin.url)
    for missing in ("alias", "origin"):
        short = {k: v for k, v in body.items() if k != missing}
        refused = send(fc, "POST", f"{ZONES}/new", short, encoding)
        error(refused, 400, missing)


def test_optimize(fc: Server, made: Made) -> None:
    zone_id = made.zone()["id"]
    accepted = fc.api.post(f"{ZONES}/{zone_id}", json={"optimize": "http"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["zone"]["optimize"] == "http"
    before = read_zone(fc, zone_id)
    for value in ("live", "vod", ""):
        error(fc.api.post(f"{ZONES}/{zone_id}", json={"optimize": value}), 400, "optimize")
    created = fc.api.post(
        f"{ZONES}/new", json={"alias": "fc-optimize", "origin": made.origin.url, "optimize": "vod"}
    )
    error(created, 400, "optimize")
    assert read_zone(fc, zone_id) == before


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_the_zones_own_answer_sent_back(fc: Server, made: Made, encoding: str) -> None:
    zone = made.zone()
    again = send(fc, "POST", f"{ZONES}/{zone['id']}", zone, encoding)
    assert again.status_code == 200, again.text
    assert again.json()["zone"] == zone  # nothing changed, not even updated_at
    changes = (("fqdn", "other.localhost"), ("hashid", "x"), ("serviceid", zone["serviceid"] + 1))
    for field, value in changes:
        refused = send(fc, "POST", f"{ZONES}/{zone['id']}", {**zone, field: value}, encoding)
        error(refused, 400, field)
    assert read_zone(fc, zone["id"]) == zone


def test_update_takes_cname_as_well_as_cnames(fc: Server, made: Made) -> None:
    zone_id = made.zone()["id"]
    for field, names in (("cname", "fc-a.example.com"), ("cnames", "fc-b.example.com")):
        answer = fc.api.post(f"{ZONES}/{zone_id}", json={field: names})
        assert answer.status_code == 200, answer.text
        assert answer.json()["zone"]["cnamesArr"] == [names]


@pytest.mark.parametrize(
    "content_type", [FORM, f"{FORM}; charset=UTF-8", JSON, f"{JSON}; charset=utf-8"]
)
def test_both_types_with_or_without_charset(fc: Server, made: Made, content_type: str) -> None:
    zone_id = made.zone()["id"]
    body = {"cache": {"cache": "2h"}}
    raw = encode(body) if content_type.startswith(FORM) else json.dumps(body)
    answer = fc.api.post(f"{ZONES}/{zone_id}", content=raw, headers={"Content-Type": content_type})
    assert answer.status_code == 200, answer.text
    assert answer.json()["zone"]["cache"]["cache"] == "2h"


def test_php_array_forms(fc: Server, made: Made) -> None:
    """`files[0]=a` as well as `files[]=a`, and `cache[cache]=4h`."""
    zone_id = made.zone()["id"]
    form = {"Content-Type": FORM}
    purged = fc.api.post(
        f"{ZONES}/{zone_id}/purge", content="files[0]=/a.png&files[1]=/b.png", headers=form
    )
    assert purged.status_code == 200, purged.text
    assert purged.json()["message"] == "Zone Purged"
    [entry] = fc.api.get(f"{ZONES}/{zone_id}/purges").json()["purges"]
    assert sorted(entry["files"]) == ["/a.png", "/b.png"], entry
    cached = fc.api.post(
        f"{ZONES}/{zone_id}", content="cache[cache]=4h&cache[expiry]=1d", headers=form
    )
    assert cached.status_code == 200, cached.text
    assert (cached.json()["zone"]["cache"]["cache"], cached.json()["zone"]["cache"]["expiry"]) == (
        "4h",
        "1d",
    )


def test_other_types_are_415_naming_both(fc: Server, made: Made) -> None:
    zone_id = made.zone()["id"]
    before = read_zone(fc, zone_id)
    for content_type in ("text/plain", "multipart/form-data; boundary=x", "application/xml"):
        answer = fc.api.post(
            f"{ZONES}/{zone_id}",
            content="cnames=x.example.com",
            headers={"Content-Type": content_type},
        )
        error(answer, 415, "application/json", "application/x-www-form-urlencoded")
    assert read_zone(fc, zone_id) == before


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_method_override_that_fits(fc: Server, made: Made, encoding: str) -> None:
    """`_METHOD`: PUT on create (the create example), DELETE on a zone and on purge."""
    zone_id = made.zone()["id"]
    purged = send(fc, "POST", f"{ZONES}/{zone_id}/purge", {"_METHOD": "DELETE"}, encoding)
    assert purged.status_code == 200, purged.text
    assert purged.json()["message"] == "Zone Purged"
    deleted = send(fc, "POST", f"{ZONES}/{zone_id}", {"_METHOD": "DELETE"}, encoding)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["message"] == "Zone Deleted"
    assert fc.api.get(f"{ZONES}/{zone_id}").status_code == 404


def _zone_ids(fc: Server) -> set[int]:
    return {z["id"] for z in fc.api.get(ZONES).json()["zones"]}


# (route under the zone, body): each `_METHOD` the contract does not list for that route.
MISFITS = {
    "delete-on-create": ("/new", {"_METHOD": "DELETE", "alias": "fc-method", "origin": ""}),
    "put-on-cache": ("/{id}/cache", {"_METHOD": "PUT", "cache": "2h"}),
    "delete-on-cache": ("/{id}/cache", {"_METHOD": "DELETE", "cache": "2h"}),
    "patch-on-update": ("/{id}", {"_METHOD": "PATCH", "cnames": "fc-m.example.com"}),
    "put-on-update": ("/{id}", {"_METHOD": "PUT", "cnames": "fc-m.example.com"}),
    "put-on-purge": ("/{id}/purge", {"_METHOD": "PUT"}),
}


@pytest.mark.parametrize(
    ("case", "encoding"),
    [pytest.param(c, e, id=f"{c}-{e}") for c in MISFITS for e in ("json", "form")],
)
def test_method_override_that_does_not_fit(
    fc: Server, made: Made, case: str, encoding: str
) -> None:
    zone_id = made.zone()["id"]
    before, zones = read_zone(fc, zone_id), _zone_ids(fc)
    path, body = MISFITS[case]
    if "origin" in body:
        body = {**body, "origin": made.origin.url}
    answer = send(fc, "POST", ZONES + path.format(id=zone_id), body, encoding)
    error(answer, None, "_METHOD")
    assert (read_zone(fc, zone_id), _zone_ids(fc)) == (before, zones)
    assert fc.api.get(f"{ZONES}/{zone_id}/purges").json()["purges"] == []


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("cache[cache=4h", id="unclosed-bracket"),
        pytest.param("cache]cache[=4h", id="stray-bracket"),
        pytest.param("cnames=%zz.example.com", id="bad-percent-escape"),
        pytest.param("cnames=%ff%fe.example.com", id="not-utf8"),
        pytest.param("cnames=a.example.com&cnames=b.example.com", id="duplicate-key"),
        pytest.param("cache[cache]=1h&cache[cache]=2h", id="duplicate-nested-key"),
        pytest.param('{"cnames": "json.example.com"}', id="json-with-form-type"),
    ],
)
def test_bad_form_bodies(fc: Server, made: Made, raw: str) -> None:
    zone_id = made.zone()["id"]
    before = read_zone(fc, zone_id)
    answer = fc.api.post(f"{ZONES}/{zone_id}", content=raw, headers={"Content-Type": FORM})
    error(answer)
    assert read_zone(fc, zone_id) == before


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_purge_of_10001_files(fc: Server, made: Made, encoding: str) -> None:
    zone_id = made.zone()["id"]
    before = read_zone(fc, zone_id)
    files = [f"/f/{n}.png" for n in range(10_001)]
    answer = send(fc, "POST", f"{ZONES}/{zone_id}/purge", {"files": files}, encoding)
    message = error(answer)
    assert "10,000" in message or "10000" in message, message
    assert read_zone(fc, zone_id) == before
    assert fc.api.get(f"{ZONES}/{zone_id}/purges").json()["purges"] == []
