"""The SDK's typed results, read from the API's answers (5centscdn field names in, Python out)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from pullzone.client import (
    ApiError,
    ApiKey,
    CachePolicy,
    NewKey,
    PrefetchResult,
    PurgeRecord,
    PurgeResult,
    Zone,
    _requests,
)

ZONE = {
    "id": 42,
    "type": "pull",
    "mode": "http",
    "alias": "videos",
    "name": "video site",
    "origin": "https://origin.example",
    "hostHeader": "origin.example",
    "cnames": "cdn.example.com,10.0.0.3",
    "cnamesArr": ["cdn.example.com", "10.0.0.3"],
    "fqdn": "videos.localhost",
    "disabled": "0",
    "status": "Enabled",
    "created_at": "2025-01-31 12:00:00",
    "updated_at": "2025-02-01 08:30:00",
    "cache": {
        "cache": "4h",
        "expiry": "",
        "querystring": "Y",
        "cachecontrol": "N",
        "usestale": "Y",
        "revalidate": "N",
        "cacheInSecs": 14400,
        "expiryInSecs": 0,
    },
}


def result(call: _requests.Call[Any], answer: dict[str, Any], status: int = 200) -> Any:
    return call.result(_requests.read_answer(status, json.dumps(answer).encode()))


def test_a_zone() -> None:
    zone = result(_requests.get_zone(42), {"result": "success", "zone": ZONE})
    assert zone == Zone(
        id=42,
        name="video site",
        alias="videos",
        origin="https://origin.example",
        fqdn="videos.localhost",
        host_header="origin.example",
        cnames=("cdn.example.com", "10.0.0.3"),
        disabled=False,
        status="Enabled",
        created_at="2025-01-31 12:00:00",
        updated_at="2025-02-01 08:30:00",
        cache=CachePolicy(
            cache="4h",
            expiry="",
            querystring=True,
            cachecontrol=False,
            usestale=True,
            revalidate=False,
            cache_secs=14400,
            expiry_secs=0,
        ),
    )


def test_results_are_frozen() -> None:
    zone = result(_requests.get_zone(42), {"result": "success", "zone": ZONE})
    with pytest.raises(dataclasses.FrozenInstanceError):
        zone.name = "x"
    assert hash(zone) == hash(dataclasses.replace(zone))


def test_zone_list_create_and_updates_read_zones() -> None:
    listed = result(_requests.list_zones(), {"result": "success", "zones": [ZONE, ZONE]})
    assert [z.id for z in listed] == [42, 42]
    changed = {"result": "success", "message": "Zone updated successfully", "zone": ZONE}
    assert result(_requests.update_zone(42, name="n"), changed).alias == "videos"
    assert result(_requests.update_cache(42, cache="1h"), changed).cache.cache == "4h"
    assert result(_requests.create_zone("n", "http://o"), changed).fqdn == "videos.localhost"


def test_a_5centscdn_zone_with_less_in_it() -> None:
    """Ids in quotes, no cnamesArr, no cache block, a disabled zone: still a Zone."""
    zone = result(
        _requests.get_zone(7),
        {
            "result": "success",
            "zone": {"id": "7", "name": "old", "cnames": "a.example, b.example", "disabled": "1"},
        },
    )
    assert (zone.id, zone.cnames, zone.disabled, zone.host_header) == (
        7,
        ("a.example", "b.example"),
        True,
        "",
    )
    assert zone.cache == CachePolicy("", "", False, False, False, False)


def test_fields_the_api_adds_later_are_ignored() -> None:
    zone = result(_requests.get_zone(42), {"result": "success", "zone": {**ZONE, "new": [1]}})
    assert zone.id == 42


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, "'id' is not an integer"),
        ({"id": True}, "'id' is not an integer"),
        ({"name": 5}, "'name' is not a string"),
        ({"cnamesArr": "a.example"}, "'cnamesArr' is not a list"),
        ({"cnamesArr": [1]}, "'cnamesArr' is not a list of strings"),
        ({"disabled": "maybe"}, "'disabled' is not '1' or '0'"),
        ({"cache": {"querystring": "yes"}}, "'querystring' is not 'Y' or 'N'"),
        ({"cache": []}, "'cache' is not a JSON object"),
    ],
)
def test_a_zone_of_the_wrong_shape_is_an_api_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as caught:
        result(_requests.get_zone(42), {"result": "success", "zone": {**ZONE, **change}})
    assert caught.value.status == 200
    assert caught.value.message == f"unexpected answer from the API: {message}"


def test_a_missing_id_or_list_is_an_api_error() -> None:
    zone = {k: v for k, v in ZONE.items() if k != "id"}
    with pytest.raises(ApiError, match="no 'id' in it"):
        result(_requests.get_zone(42), {"result": "success", "zone": zone})
    with pytest.raises(ApiError, match="an item of 'zones' is not a JSON object"):
        result(_requests.list_zones(), {"result": "success", "zones": [1]})


def test_purge_results() -> None:
    ours = {"result": "success", "message": "Zone Purged", "id": 12, "purged": 3}
    assert result(_requests.purge(42, ["/a"]), ours) == PurgeResult("Zone Purged", 12, 3, ())
    pending = {**ours, "pending": ["edge-2", "edge-3"]}
    assert result(_requests.purge(42), pending).pending == ("edge-2", "edge-3")
    seed = {"result": "success", "message": "Zone Purged"}  # what 5centscdn answers
    assert result(_requests.purge(42), seed) == PurgeResult("Zone Purged")


def test_prefetch_results() -> None:
    answer = {"result": "success", "message": "Zone Prefetched", "id": 13, "files": 2}
    assert result(_requests.prefetch(42, ["/a", "/b"]), answer) == PrefetchResult(
        "Zone Prefetched", 13, 2, ()
    )
    pending = {**answer, "pending": ["edge-2"]}
    assert result(_requests.prefetch(42, ["/a"]), pending).pending == ("edge-2",)
    with pytest.raises(ApiError, match="'files' is not an integer"):
        result(_requests.prefetch(42, ["/a"]), {**answer, "files": "two"})


def test_purge_history() -> None:
    record = {
        "id": 12,
        "created_at": "2025-01-31 12:00:00",
        "key": "admin",
        "all": False,
        "delete": True,
        "files": ["/videos/file.mp4", "/images/*"],
        "tags": [],
        "matched": 2,
        "reclaimed_at": None,
    }
    whole = {**record, "id": 11, "all": True, "files": [], "matched": None}
    history = result(_requests.purges(42), {"result": "success", "purges": [record, whole]})
    assert history == [
        PurgeRecord(
            12,
            "2025-01-31 12:00:00",
            "admin",
            False,
            True,
            ("/videos/file.mp4", "/images/*"),
            (),
            2,
            None,
        ),
        PurgeRecord(11, "2025-01-31 12:00:00", "admin", True, True, (), (), None, None),
    ]


KEY = {
    "id": "key_3f9a1c0b2d4e",
    "name": "deploy-bot",
    "admin": False,
    "zones": [42, 43],
    "purge_only": True,
    "created_at": "2025-01-31 12:00:00",
    "revoked_at": None,
}


def test_keys() -> None:
    listed = result(
        _requests.list_keys(), {"result": "success", "keys": [KEY, {**KEY, "zones": None}]}
    )
    assert listed[0] == ApiKey(
        "key_3f9a1c0b2d4e", "deploy-bot", False, (42, 43), True, "2025-01-31 12:00:00", None
    )
    assert listed[1].zones is None
    created = {"result": "success", "message": "Key Created", "key": KEY, "secret": "s3cret"}
    assert result(_requests.create_key("deploy-bot"), created) == NewKey(listed[0], "s3cret")
    with pytest.raises(ApiError, match="no 'secret' in it"):
        result(_requests.create_key("n"), {"result": "success", "key": KEY})
    with pytest.raises(ApiError, match="'zones' is not a list of zone ids"):
        result(_requests.list_keys(), {"result": "success", "keys": [{**KEY, "zones": ["a"]}]})


def test_a_key_answer_with_permissions_and_its_account_api_id() -> None:
    """What servers with /v2/account/api add to a key; older answers read as above."""
    fields = {"description": "ci", "permission": ["read", "purge"], "apikeyid": 69931128008014}
    [key] = result(_requests.list_keys(), {"result": "success", "keys": [{**KEY, **fields}]})
    assert (key.description, key.permission, key.apikeyid) == (
        "ci",
        ("read", "purge"),
        fields["apikeyid"],
    )
    with pytest.raises(ApiError, match="'permission' is not a list of strings"):
        result(_requests.list_keys(), {"result": "success", "keys": [{**KEY, "permission": [1]}]})


def test_calls_that_answer_only_a_message() -> None:
    done = {"result": "success", "message": "Zone Deleted"}
    assert result(_requests.delete_zone(42), done) is None
    assert result(_requests.revoke_key("key_1"), done) is None
