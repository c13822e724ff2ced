"""What an operator sees (issue #8): /metrics and /v2/stats after known traffic, the
access log in both formats, and the purge audit line. A real `pullzone serve`; workers
publish their counts once a second, so each check waits (bounded) until they show."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from origin import Origin, Reply
from server import API_KEY, Server, samples, until


def serve(origin: Origin, path: str, headers: list[tuple[str, str]] | None = None) -> None:
    origin.route(
        path,
        Reply(200, [("Cache-Control", "max-age=600"), *(headers or [])], b"0123456789"),
    )


def test_metrics_count_known_traffic_per_zone(
    server: Server, origin: Origin, zone: dict[str, Any], path: str
) -> None:
    serve(origin, path)
    host, zid = str(zone["fqdn"]), zone["id"]
    xcache = [server.get(host, path).headers["x-cache"] for _ in range(4)]
    assert xcache == ["MISS", "HIT", "HIT", "HIT"]
    assert server.purge(zid, [path], delete=True).status_code == 200
    assert server.get(host, path).headers["x-cache"] == "MISS"

    def ours(m: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in m.items() if f'zone="{zid}"' in k}

    got = until(
        lambda: ours(samples(server)),
        lambda m: m.get(f'pullzone_requests_total{{cache_status="MISS",zone="{zid}"}}') == 2,
    )
    assert got[f'pullzone_requests_total{{cache_status="HIT",zone="{zid}"}}'] == 3
    assert got[f'pullzone_origin_requests_total{{zone="{zid}"}}'] == 2
    assert got[f'pullzone_origin_failures_total{{zone="{zid}"}}'] == 0
    assert got[f'pullzone_origin_latency_seconds_count{{zone="{zid}"}}'] == 2
    assert got[f'pullzone_origin_latency_seconds_bucket{{le="+Inf",zone="{zid}"}}'] == 2
    assert got[f'pullzone_purges_total{{kind="hard_selective",zone="{zid}"}}'] == 1
    # Five responses of a 10-byte body, each with its head.
    assert 5 * 10 < got[f'pullzone_response_bytes_total{{zone="{zid}"}}'] < 5 * 1000
    every = samples(server)
    assert every["pullzone_cache_objects"] >= 1 and every["pullzone_cache_bytes"] >= 10
    assert "pullzone_cache_evictions_total" in every
    assert any(k.startswith("pullzone_worker_event_lag{") for k in every)
    assert every["pullzone_purge_seconds_count"] >= 1


def test_stats_give_the_zone_figures_and_the_last_hour(
    server: Server, origin: Origin, zone: dict[str, Any], path: str
) -> None:
    serve(origin, path)
    host, zid = str(zone["fqdn"]), zone["id"]
    for _ in range(4):
        server.get(host, path)

    def stats() -> dict[str, Any]:
        response = server.api.get("/stats", params={"zone": zid})
        assert response.status_code == 200, response.text
        return dict(response.json())

    # Request counts show within a second; what the cache holds is read every 5 s.
    body = until(stats, lambda b: b["zones"][0]["requests"] == 4 and b["zones"][0]["cache_objects"])
    [row] = body["zones"]
    assert row["id"] == zid and row["fqdn"] == host
    assert (row["hits"], row["hit_ratio"], row["origin_requests"]) == (3, 0.75, 1)
    assert row["cache_objects"] == 1 and row["cache_bytes"] == 10
    series = body["series"]
    assert series["step"] == 60 and series["start"] % 60 == 0
    assert time.time() - series["start"] < 3600 + 60
    statuses = series["statuses"]
    assert all(len(v) == 60 for v in statuses.values())
    assert sum(statuses["HIT"]) == 3 and sum(statuses["MISS"]) == 1
    assert server.api.get("/stats", params={"zone": 10**9}).status_code == 404


def test_metrics_need_the_admin_key(server: Server) -> None:
    url = server.api_url.removesuffix("/v2") + "/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    created = server.api.post("/keys", json={"name": "reader"})
    assert created.status_code == 200, created.text
    scoped = created.json()["secret"]
    answer = httpx.get(url, headers={"X-API-Key": scoped})
    assert answer.status_code == 403
    assert answer.json()["result"] == "error"


@pytest.fixture(scope="module", params=["json", "combined"])
def logged(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path, str]]:
    fmt = str(request.param)
    base = tmp_path_factory.mktemp(f"logged-{fmt}")
    log = base / "access.log"
    extra = ("--access-log", str(log), "--access-log-format", fmt)
    server = Server(base / "data", *extra, workers=1).start()
    yield server, log, fmt
    server.stop()


def test_access_log_and_purge_audit(
    logged: tuple[Server, Path, str], origin: Origin, path: str
) -> None:
    server, log, fmt = logged
    serve(origin, path)
    zone = server.create_zone(origin.url, alias=f"log-{fmt}")
    host = str(zone["fqdn"])
    agent = 'probe "quoted"\tend'
    server.get(host, path, headers={"User-Agent": agent, "Referer": "http://r.test/"})
    server.get(host, path)
    lines = until(
        lambda: log.read_text().splitlines() if log.exists() else [],
        lambda got: len(got) >= 2,
    )
    assert len(lines) == 2
    if fmt == "json":
        first, second = (json.loads(line) for line in lines)
        assert first["method"] == "GET" and first["target"] == path and first["host"] == host
        assert (first["status"], first["cache"], first["zone"]) == (200, "MISS", zone["id"])
        assert first["user_agent"] == agent and first["referer"] == "http://r.test/"
        assert first["bytes"] > 10 and first["duration_ms"] >= 0
        assert second["cache"] == "HIT" and second["client"] == "127.0.0.1"
    else:
        combined = re.compile(
            r"^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
            r'"GET (\S+) HTTP/1\.1" 200 (\d+) "(.*)" "(.*)"$'
        )
        match = combined.match(lines[0])
        assert match, lines[0]
        assert match.group(1) == path and int(match.group(2)) > 10
        assert match.group(3) == "http://r.test/"
        # Quotes escaped and control bytes shown: a client cannot forge a log line.
        assert match.group(4) == 'probe \\"quoted\\"\\x09end'

    answer = server.purge(int(zone["id"]), [path], delete=True)
    assert answer.status_code == 200
    audit = until(
        lambda: [line for line in server.output().splitlines() if "pullzone.audit" in line],
        bool,
    )
    entry = json.loads(audit[-1].split("pullzone.audit ", 1)[1])
    assert entry["event"] == "purge" and entry["id"] == answer.json()["id"]
    assert (entry["zone"], entry["key"], entry["delete"]) == (zone["id"], "admin", True)
    assert entry["files"] == [{"path": path, "query": None, "prefix": False}]
    assert entry["matched"] == 1
    assert API_KEY not in server.output()  # secrets never logged
