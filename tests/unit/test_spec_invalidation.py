"""Invalidation after unsafe requests (RFC 9111 §4.4)."""

from __future__ import annotations

import pytest

from pullzone.spec.headers import HeaderMap
from pullzone.spec.invalidation import invalidated_paths


def paths(
    resp: HeaderMap | None = None,
    *,
    method: str = "POST",
    status: int = 200,
    path: str = "/items/7?x=1",
    host: str = "cdn.example.com",
) -> list[str]:
    return invalidated_paths(method, status, path, resp or {}, host)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_safe_methods_invalidate_nothing(method: str) -> None:
    assert paths(method=method) == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "PURGE", "get"])
def test_unsafe_or_unknown_methods_invalidate_the_target_with_its_query(method: str) -> None:
    assert paths(method=method) == ["/items/7?x=1"]


@pytest.mark.parametrize("status", [100, 400, 404, 500, 503])
def test_error_statuses_invalidate_nothing(status: int) -> None:
    assert paths(status=status) == []


@pytest.mark.parametrize("status", [200, 201, 204, 301, 303, 399])
def test_success_and_redirect_statuses_invalidate(status: int) -> None:
    assert paths(status=status) == ["/items/7?x=1"]


def test_location_on_the_same_host_is_invalidated_too() -> None:
    resp = {"location": "http://CDN.example.com:8080/items/8?y=2#frag"}
    assert paths(resp) == ["/items/7?x=1", "/items/8?y=2"]


def test_location_on_another_host_is_not_invalidated() -> None:
    resp = {"location": "https://evil.example.net/items/8"}
    assert paths(resp) == ["/items/7?x=1"]


def test_userinfo_does_not_fool_the_host_check() -> None:
    resp = {"location": "http://cdn.example.com@evil.example.net/x"}
    assert paths(resp) == ["/items/7?x=1"]
    resp = {"location": "http://user:pw@cdn.example.com/x"}
    assert paths(resp) == ["/items/7?x=1", "/x"]


def test_scheme_relative_location_is_host_checked() -> None:
    assert paths({"location": "//other.example/x"}) == ["/items/7?x=1"]
    assert paths({"location": "//cdn.example.com/x"}) == ["/items/7?x=1", "/x"]


def test_relative_references_resolve_against_the_request_path() -> None:
    assert paths({"location": "/abs"}) == ["/items/7?x=1", "/abs"]
    assert paths({"location": "8"}) == ["/items/7?x=1", "/items/8"]
    assert paths({"location": "../up?q"}) == ["/items/7?x=1", "/up?q"]


def test_content_location_is_invalidated_and_duplicates_are_dropped() -> None:
    resp = {"location": "/items/7?x=1", "content-location": "/items/7/v2"}
    assert paths(resp) == ["/items/7?x=1", "/items/7/v2"]


def test_absolute_uri_without_path_means_slash() -> None:
    assert paths({"location": "http://cdn.example.com"}) == ["/items/7?x=1", "/"]


@pytest.mark.parametrize("location", ["mailto:a@b.c", "ftp://cdn.example.com/x", "http://[::1"])
def test_non_http_or_malformed_references_are_skipped(location: str) -> None:
    assert paths({"location": location}) == ["/items/7?x=1"]


def test_ipv6_hosts_compare_with_brackets() -> None:
    resp = {"location": "http://[::1]:8080/x"}
    assert paths(resp, host="[::1]") == ["/items/7?x=1", "/x"]
