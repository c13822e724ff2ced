"""Request bodies, JSON or form with PHP's array syntax (control/body.py), without a server."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from pullzone.control import body
from pullzone.control.errors import STATUS_OF_REFUSAL
from pullzone.refusal import Refused

FORM = "application/x-www-form-urlencoded"


def refused(raw: bytes, ctype: str | None = FORM) -> tuple[int, str]:
    with pytest.raises(Refused) as info:
        body.decode(raw, ctype)
    return STATUS_OF_REFUSAL[info.value.reason], info.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"alias=site&origin=http%3A%2F%2Fo.example",
            {"alias": "site", "origin": "http://o.example"},
        ),
        (b"files[]=%2Fa&files[]=%2Fb", {"files": ["/a", "/b"]}),
        (b"files%5B0%5D=%2Fa&files%5B1%5D=%2Fb", {"files": ["/a", "/b"]}),  # http_build_query
        (b"files[1]=%2Fb&files[0]=%2Fa", {"files": ["/a", "/b"]}),
        (b"cache[cache]=4h&cache[querystring]=N", {"cache": {"cache": "4h", "querystring": "N"}}),
        (b"geoblock[list][]=US&geoblock[list][]=GB", {"geoblock": {"list": ["US", "GB"]}}),
        (b"name=caf%C3%A9+bar", {"name": "café bar"}),
        (b"cnames=", {"cnames": ""}),
        (b"", {}),
    ],
)
def test_php_form_syntax_decodes_to_the_json_shape(raw: bytes, expected: dict[str, Any]) -> None:
    assert body.decode(raw, FORM) == expected
    assert body.decode(raw, FORM + "; charset=UTF-8") == expected


def test_json_with_or_without_charset_and_without_a_content_type() -> None:
    for ctype in ("application/json", "application/json; charset=utf-8", None):
        assert body.decode(b'{"files": ["/a"]}', ctype) == {"files": ["/a"]}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"alias=a&alias=b", "given twice"),
        (b"files[0]=a&files[0]=b", "given twice"),
        (b"a=1&a[b]=2", "both a value and a list"),
        (b"a[b]=2&a=1", "given twice"),
        (b"a[]=1&a[0][y]=2", "both a value and a list"),
        (b"a[b=1", "malformed form field name"),
        (b"[b]=1", "malformed form field name"),
        (b"a[][b]=1", "[] may only come last"),
        (b"a[1][2][3][4][5]=1", "nested too deeply"),
        (b"a=%FF", "not UTF-8"),
        (b"\xff=1", "not UTF-8"),
        (b"a=1&&b", "malformed form body"),
        (b'{"alias": "a"}', "Content-Type: application/json"),
    ],
)
def test_malformed_forms_are_400(raw: bytes, words: str) -> None:
    status, message = refused(raw)
    assert status == 400 and words in message, message


def test_json_names_given_twice_are_400() -> None:
    status, message = refused(b'{"alias": "a", "alias": "b"}', "application/json")
    assert status == 400 and "given twice" in message


def test_too_many_form_fields_is_413() -> None:
    raw = urlencode([("files[]", f"/{i}") for i in range(body.MAX_FORM_FIELDS + 1)]).encode()
    assert refused(raw)[0] == 413


@pytest.mark.parametrize("ctype", ["text/plain", "multipart/form-data; boundary=x", "text/xml"])
def test_other_media_types_are_415_naming_the_two(ctype: str) -> None:
    status, message = refused(b"x=1", ctype)
    assert status == 415 and "application/json" in message and FORM in message


def test_a_lone_surrogate_is_refused_in_either_encoding() -> None:
    assert refused(b'{"name": "\\ud800"}', "application/json")[0] == 400
    assert refused(b"name=%ED%A0%80")[0] == 400  # the surrogate as (invalid) UTF-8


@pytest.mark.parametrize(
    ("given", "allowed", "expected"),
    [(None, ("PUT",), "POST"), ("put", ("PUT",), "PUT"), (" DELETE ", ("DELETE",), "DELETE")],
)
def test_method_override_is_taken_out(
    given: str | None, allowed: tuple[str, ...], expected: str
) -> None:
    data: dict[str, Any] = {"files": ["/a"]}
    if given is not None:
        data["_METHOD"] = given
    assert body.method_of(data, allowed, "POST /x") == expected
    assert data == {"files": ["/a"]}


@pytest.mark.parametrize("given", ["DELETE", "GET", "", 1, ["PUT"]])
def test_a_method_override_that_does_not_fit_the_route_is_400(given: object) -> None:
    with pytest.raises(Refused) as info:
        body.method_of({"_METHOD": given}, ("PUT",), "POST /v2/zones/http/pull/new")
    assert "does not fit POST /v2/zones/http/pull/new" in info.value.message
