"""Prefetch requests (docs/api.md, Prefetch) parsed without a server, and their event."""

from __future__ import annotations

import dataclasses

import pytest

from pullzone.bus.events import PREFETCH, Event, Prefetch
from pullzone.control.errors import STATUS_OF_REFUSAL
from pullzone.limits import MAX_PREFETCH_FILES
from pullzone.refusal import Refused
from pullzone.zones.model import CachePolicy, Zone
from pullzone.zones.prefetch import plan_prefetch

ZONE = Zone(
    id=42, name="site", alias="site", origin="http://o.example", cnames=("cdn.example.com",)
)


def refusal(body: dict[str, object], zone: Zone = ZONE) -> tuple[int, str]:
    with pytest.raises(Refused) as info:
        plan_prefetch(body, zone, "localhost")
    return STATUS_OF_REFUSAL[info.value.reason], info.value.message


def test_paths_and_urls_become_targets_in_order_each_once() -> None:
    files = ["/b.css", "https://cdn.example.com/a.js", "/b.css", "/%62.css", "/c%2a.png"]
    assert plan_prefetch({"files": files}, ZONE, "localhost") == ("/b.css", "/a.js", "/c%2A.png")


def test_the_query_is_kept_only_where_the_zone_keys_on_it() -> None:
    assert plan_prefetch({"files": ["/a.js?v=2"]}, ZONE, "localhost") == ("/a.js?v=2",)
    unkeyed = dataclasses.replace(ZONE, cache=CachePolicy(querystring=False))
    assert plan_prefetch({"files": ["/a.js?v=2"]}, unkeyed, "localhost") == ("/a.js",)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "list of strings"),
        ({"files": []}, 400, "empty"),
        ({"files": [None]}, 400, "list of strings"),
        ({"files": ["/img/*"]}, 400, "has a *"),
        ({"files": ["*.js"]}, 400, "has a *"),
        ({"files": ["/a"], "delete": True}, 400, "unknown field 'delete'"),
        ({"files": ["/a/../b"]}, 400, ".."),
        ({"files": ["/a"] * (MAX_PREFETCH_FILES + 1)}, 413, "at most 1000"),
    ],
)
def test_what_is_refused(body: dict[str, object], status: int, words: str) -> None:
    got_status, message = refusal(body)
    assert got_status == status and words in message, message


def test_the_event_payload_round_trips_and_bad_ones_raise() -> None:
    change = Prefetch("site.localhost", ("/a.css", "/b.js?v=1"))
    event = Event.of(7, 42, change, 0.0)
    assert event.kind == PREFETCH
    assert Prefetch.from_payload(event.payload) == change
    for bad in ({"host": "h"}, {"host": 1, "files": []}, {"host": "h", "files": ["a"]}):
        with pytest.raises((KeyError, TypeError, ValueError)):
            Prefetch.from_payload(bad)
