"""The SDK's request building and answer reading, as the pure functions both clients share."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pullzone.client import ApiError, PurgeResult, _requests
from pullzone.client._requests import Answer, Call


def sent(call: Call[Any]) -> tuple[str, str, dict[str, str] | None, Any]:
    return call.method, call.path, dict(call.params) if call.params else None, call.json


# --- requests --------------------------------------------------------------------------------


def test_list_zones() -> None:
    assert sent(_requests.list_zones()) == ("GET", "/zones/http/pull", None, None)


def test_get_zone() -> None:
    assert sent(_requests.get_zone(12)) == ("GET", "/zones/http/pull/12", None, None)
    assert sent(_requests.get_zone("12")) == ("GET", "/zones/http/pull/12", None, None)


def test_create_zone_sends_5centscdn_field_names() -> None:
    call = _requests.create_zone(
        "site",
        "https://o.example",
        alias="site",
        cnames=["a.example", "b.example"],
        host_header="o.example",
        disabled=False,
        cache={"cache": "1h", "querystring": False, "usestale": "Y"},
    )
    assert sent(call) == (
        "POST",
        "/zones/http/pull/new",
        None,
        {
            "name": "site",
            "origin": "https://o.example",
            "alias": "site",
            "cnames": "a.example,b.example",
            "hostHeader": "o.example",
            "disabled": "0",
            "cache": {"cache": "1h", "querystring": "N", "usestale": "Y"},
        },
    )
    assert call.idempotent is False  # a second one would be a second zone


def test_create_zone_with_other_5centscdn_fields() -> None:
    call = _requests.create_zone("s", "http://o", extra={"geoblock": {"enabled": "N"}})
    assert call.json == {"name": "s", "origin": "http://o", "geoblock": {"enabled": "N"}}


def test_unknown_zone_fields_are_refused_before_sending() -> None:
    with pytest.raises(TypeError, match=r"unknown zone field 'hostHeader'.*extra="):
        _requests.create_zone("s", "http://o", hostHeader="h")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unknown cache field 'ttl'"):
        _requests.update_cache(1, ttl="1h")  # type: ignore[call-arg]


def test_update_zone() -> None:
    call = _requests.update_zone(3, name="renamed", cnames="")
    assert sent(call) == ("POST", "/zones/http/pull/3", None, {"name": "renamed", "cnames": ""})
    assert call.idempotent


def test_update_cache_posts_the_cache_fields_at_top_level() -> None:
    call = _requests.update_cache(3, cache="30m", usestale=False, revalidate=True)
    assert sent(call) == (
        "POST",
        "/zones/http/pull/3/cache",
        None,
        {"cache": "30m", "usestale": "N", "revalidate": "Y"},
    )


def test_delete_zone() -> None:
    assert sent(_requests.delete_zone(3)) == ("DELETE", "/zones/http/pull/3", None, None)


def test_whole_zone_purge_has_no_body_and_no_query() -> None:
    assert sent(_requests.purge(7)) == ("POST", "/zones/http/pull/7/purge", None, None)


def test_whole_zone_hard_purge() -> None:
    call = _requests.purge(7, delete=True)
    assert sent(call) == ("POST", "/zones/http/pull/7/purge", {"delete": "true"}, None)


def test_files_purge() -> None:
    call = _requests.purge(7, ["/a.png", "https://cdn.example/b?x=1"])
    assert sent(call) == (
        "POST",
        "/zones/http/pull/7/purge",
        None,
        {"files": ["/a.png", "https://cdn.example/b?x=1"]},
    )


def test_files_and_tags_hard_purge() -> None:
    call = _requests.purge(7, ["/a"], tags=["t1", "t2"], delete=True)
    assert sent(call) == (
        "POST",
        "/zones/http/pull/7/purge",
        {"delete": "true"},
        {"files": ["/a"], "tags": ["t1", "t2"]},
    )


def test_tags_purge_alone() -> None:
    assert _requests.purge(7, tags=["t"]).json == {"tags": ["t"]}


def test_an_empty_file_list_is_sent_as_it_is_never_as_a_whole_zone_purge() -> None:
    assert _requests.purge(7, []).json == {"files": []}
    assert _requests.purge(7, tags=[]).json == {"tags": []}


def test_a_purge_list_must_be_a_list_of_strings() -> None:
    with pytest.raises(TypeError):
        _requests.purge(7, "/a.png")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _requests.purge(7, tags=[1])  # type: ignore[list-item]


def test_purge_history() -> None:
    assert sent(_requests.purges(7)) == ("GET", "/zones/http/pull/7/purges", None, None)


def test_prefetch() -> None:
    call = _requests.prefetch(7, ["/a.css", "https://cdn.example/b?x=1"])
    assert sent(call) == (
        "POST",
        "/zones/http/pull/7/prefetch",
        None,
        {"files": ["/a.css", "https://cdn.example/b?x=1"]},
    )
    assert call.idempotent  # prefetching twice stores what prefetching once does
    with pytest.raises(TypeError):
        _requests.prefetch(7, "/a.css")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, "0", -1, "-1", "1/purge", "a", "", "1 ", "\u0661", True, 1.5])
def test_zone_ids_are_positive_integers(bad: Any) -> None:
    with pytest.raises(ValueError, match="zone id"):
        _requests.get_zone(bad)


def test_request_bodies_are_copies() -> None:
    files = ["/a"]
    call = _requests.purge(1, files)
    files.append("/b")
    assert call.json == {"files": ["/a"]}


def test_purge_lists_may_be_any_iterable() -> None:
    assert _requests.purge(1, (f"/{i}" for i in range(2))).json == {"files": ["/0", "/1"]}


def test_what_is_sent_on_the_wire() -> None:
    request = _requests.purge(7, ["/café.png"], delete=True).request()
    assert request == {
        "method": "POST",
        "url": "/zones/http/pull/7/purge",
        "params": {"delete": "true"},
        "content": '{"files":["/café.png"]}'.encode(),
        "headers": {"Content-Type": "application/json"},
    }
    whole = _requests.purge(7).request()
    assert (whole["content"], whole["headers"]) == (None, None)


# --- answers ---------------------------------------------------------------------------------


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_success_answer() -> None:
    answer = _requests.read_answer(200, body({"result": "success", "zones": []}))
    assert answer == Answer(200, {"result": "success", "zones": []})


def test_picking_the_result() -> None:
    zone = {"id": 1, "name": "a"}
    answer = _requests.read_answer(200, body({"result": "success", "zone": zone}))
    assert _requests.get_zone(1).result(answer).id == 1
    zones = _requests.read_answer(200, body({"result": "success", "zones": [zone]}))
    assert [z.name for z in _requests.list_zones().result(zones)] == ["a"]
    history = _requests.read_answer(200, body({"result": "success", "purges": [{"id": 4}]}))
    assert [p.id for p in _requests.purges(1).result(history)] == [4]


def test_purge_and_delete_results() -> None:
    whole = {"result": "success", "message": "Zone Purged", "id": 9, "purged": 2, "pending": []}
    result = _requests.purge(1, ["/a"]).result(_requests.read_answer(200, body(whole)))
    assert result == PurgeResult(message="Zone Purged", id=9, purged=2, pending=())
    deleted = {"result": "success", "message": "Zone Deleted"}
    assert _requests.delete_zone(1).result(_requests.read_answer(200, body(deleted))) is None


@pytest.mark.parametrize(
    ("status", "payload", "message"),
    [
        (400, {"result": "error", "message": "unknown field 'x'"}, "unknown field 'x'"),
        (401, {"result": "error", "message": "missing API key"}, "missing API key"),
        (404, {"result": "error", "message": "no zone 9"}, "no zone 9"),
        (429, {"result": "error", "message": "slow down"}, "slow down"),
        (503, {"result": "error", "message": "bus unreachable"}, "bus unreachable"),
        # 5centscdn sometimes says no with a 200
        (200, {"result": "error", "message": "Zone not found"}, "Zone not found"),
    ],
)
def test_error_answers(status: int, payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as caught:
        _requests.read_answer(status, body(payload))
    assert caught.value.status == status
    assert caught.value.message == message


def test_non_2xx_without_a_json_message() -> None:
    with pytest.raises(ApiError) as caught:
        _requests.read_answer(502, b"upstream went away")
    assert (caught.value.status, caught.value.message) == (
        502,
        "HTTP 502 Bad Gateway: upstream went away",
    )


def test_non_2xx_html_is_not_echoed() -> None:
    with pytest.raises(ApiError) as caught:
        _requests.read_answer(500, b"<html><body>Internal Server Error</body></html>")
    assert caught.value.message == "HTTP 500 Internal Server Error"


def test_non_2xx_json_without_message() -> None:
    with pytest.raises(ApiError) as caught:
        _requests.read_answer(403, body({"result": "error"}))
    assert (caught.value.status, caught.value.message) == (403, "HTTP 403 Forbidden")


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_2xx_that_is_not_a_json_object(content: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        _requests.read_answer(200, content)
    assert caught.value.status == 200
    assert "not a JSON object" in caught.value.message


def test_success_without_the_expected_field() -> None:
    answer = _requests.read_answer(200, body({"result": "success"}))
    with pytest.raises(ApiError) as caught:
        _requests.get_zone(1).result(answer)
    assert caught.value.status == 200
    assert "'zone'" in caught.value.message


def test_success_with_a_field_of_the_wrong_kind() -> None:
    answer = _requests.read_answer(200, body({"result": "success", "zones": {"a": 1}}))
    with pytest.raises(ApiError, match="'zones' is not a list"):
        _requests.list_zones().result(answer)


def test_api_error_fields_and_text() -> None:
    error = ApiError(404, "no zone 9")
    assert (error.status, error.message) == (404, "no zone 9")
    assert str(error) == "no zone 9 (HTTP 404)"
    assert repr(error) == "ApiError(404, 'no zone 9')"
    assert str(ApiError(0, "cannot reach the API at http://x/v2: refused")).startswith("cannot")


# --- transport failures, base URL, headers ---------------------------------------------------


def test_connection_refused() -> None:
    error = _requests.unreachable(
        "http://127.0.0.1:1/v2", 30, httpx.ConnectError("[Errno 111] Connection refused")
    )
    assert error.status == 0
    assert error.message == "cannot reach the API at http://127.0.0.1:1/v2: Connection refused"


def test_read_timeout() -> None:
    error = _requests.unreachable("http://h/v2", 2.5, httpx.ReadTimeout("timed out"))
    assert error.status == 0
    assert error.message == "no answer from the API at http://h/v2 within 2.5 s"


def test_connect_timeout() -> None:
    error = _requests.unreachable("http://h/v2", 30, httpx.ConnectTimeout(""))
    assert error.message == "cannot reach the API at http://h/v2: connection timed out after 30 s"


def test_settings_from_the_environment() -> None:
    env = {"PULLZONE_API_URL": "https://cdn.example/v2/", "PULLZONE_API_KEY": "k1"}
    assert _requests.settings(None, None, env) == ("https://cdn.example/v2", "k1")
    assert _requests.settings("http://a/v2", "k2", env) == ("http://a/v2", "k2")
    assert _requests.settings(None, None, {}) == ("http://127.0.0.1:8081/v2", None)
    assert _requests.settings(None, None, {"PULLZONE_API_KEY": ""}) == (
        "http://127.0.0.1:8081/v2",
        None,
    )


@pytest.mark.parametrize("bad", ["ftp://h/v2", "127.0.0.1:8081", "http://", "v2", "http://[::1"])
def test_base_url_must_be_http(bad: str) -> None:
    with pytest.raises(ValueError, match="http"):
        _requests.check_base_url(bad)


def test_headers() -> None:
    assert _requests.headers("k")["X-API-Key"] == "k"
    assert "X-API-Key" not in _requests.headers(None)
    assert _requests.headers(None)["Accept"] == "application/json"
