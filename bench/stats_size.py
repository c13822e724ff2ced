#!/usr/bin/env python3
"""Cluster-wide `GET /v2/stats` with thousands of zones (server/stats_exchange.py): the
answer's size and time, and one edge's NATS reply.

    .venv/bin/python bench/stats_size.py                  # 2,000 zones
    .venv/bin/python bench/stats_size.py --zones 5000 --busy 300

One nats-server, an API node (`--role api`) and two edges (`--role edge --workers 1`) on
this machine. `--zones` zones are made through the API (the typical zone of
bench/pzbench/zones.py, signed URLs off so that the bench's requests are answered); once
every node applied them, `--busy` of them get traffic on both edges (a MISS and two HITs
of an object each), and once both edges' figures show it, `GET /v2/stats` (every zone)
is asked `--requests` times for each span: the default (the last hour, in minutes), the
last 24 hours (minutes) and the last 7 days (hours). For each: the answer's JSON bytes,
what came over the wire, and p50/max of the time to the whole answer; and the size of
edge-1's own reply on `pullzone.stats.edge-1` to the same question (compressed, as sent,
and its JSON). Writes bench/results/stats_size_<zones>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime
import http.server
import json
import shutil
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from propagation import nats_server, pct
from pzbench import procs
from pzbench.procs import Pullzone
from pzbench.zones import zone_body

from pullzone.bus.jetstream import JetStreamBus
from pullzone.control.stats_query import StatsQuery, span_of
from pullzone.server.stats_exchange import SUBJECT

BENCH = Path(__file__).resolve().parent
DAY = 24 * 3600
SPANS = {"1 h (default)": None, "24 h": DAY, "7 d": 7 * DAY}


class _Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"x" * 2048
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=3600")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def create_zones(api: Pullzone, zones: int, origin: str) -> list[dict[str, Any]]:
    """`zones` zones through the API, 8 at a time; in the order made."""
    assert api.api is not None
    client = api.api

    def one(i: int) -> dict[str, Any]:
        body = zone_body(i, origin)
        body["securetoken"] = {"enabled": "N"}
        for _attempt in range(5):
            r = client.post("/zones/http/pull/new", json=body)
            if r.status_code == 200:
                return dict(r.json()["zone"])
            time.sleep(0.5)  # a 503 while the bus is busy: once more
        raise RuntimeError(f"zone {i}: {r.status_code} {r.text[:300]}")

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(1, zones + 1)))


async def until_applied(url: str, nodes: set[str], timeout: float = 300) -> None:
    """Until every node in `nodes` has applied the whole stream (its registry entry)."""
    bus = await JetStreamBus.connect([url], "bench-stats", role="tool", observe=True)
    try:
        last = await bus.last_stream_seq()
        deadline = time.monotonic() + timeout
        while {n["node"] for n in await bus.nodes() if n.get("applied", 0) >= last} < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{nodes} did not apply event {last} within {timeout} s")
            await asyncio.sleep(0.2)
    finally:
        await bus.close()


def traffic(edges: list[Pullzone], zones: list[dict[str, Any]]) -> int:
    """A MISS and two HITs of one object of each zone on each edge; requests made."""

    def one(edge: Pullzone, zone: dict[str, Any]) -> int:
        with httpx.Client(base_url=f"http://127.0.0.1:{edge.port}", timeout=60) as client:
            for _ in range(3):
                r = client.get("/asset.bin", headers={"Host": zone["fqdn"]})
                if r.status_code != 200:
                    raise RuntimeError(f"{zone['fqdn']} on {edge.port}: {r.status_code}")
        return 3

    with ThreadPoolExecutor(4) as pool:
        return sum(pool.map(lambda pair: one(*pair), [(e, z) for e in edges for z in zones]))


def params(span: int | None, now: float) -> dict[str, str]:
    return {} if span is None else {"from": str(int(now) - span), "to": str(int(now))}


def until_counted(api: Pullzone, requests: int, timeout: float = 120) -> None:
    """Until the answer's total counts every request made (the edges publish their
    counters once a second)."""
    assert api.api is not None
    deadline = time.monotonic() + timeout
    while True:
        body = api.api.get("/stats").json()
        counted = sum(row["requests"] for row in body["zones"])
        if counted >= requests and len(body["nodes"]) == 2 and not body["unreachable"]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"stats count {counted} of {requests} requests")
        time.sleep(0.5)


def answers(api: Pullzone, span: int | None, times: int) -> dict[str, Any]:
    assert api.api is not None
    took, sizes, wire = [], [], []
    for _ in range(times):
        started = time.perf_counter()
        r = api.api.get("/stats", params=params(span, time.time()))
        took.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, r.text[:300]
        sizes.append(len(r.content))
        wire.append(r.num_bytes_downloaded)
    return {
        "json_bytes": max(sizes),
        "wire_bytes": max(wire),
        "encoding": r.headers.get("content-encoding", "identity"),
        "p50_ms": round(pct(took, 0.5), 1),
        "max_ms": round(max(took), 1),
    }


async def node_reply(url: str, zone_ids: list[int], span: int | None) -> dict[str, float]:
    """edge-1's reply to the API node's question, as it comes over NATS."""
    bus = await JetStreamBus.connect([url], "bench-stats", role="tool", observe=True)
    try:
        now = time.time()
        span_text = params(span, now)
        query = StatsQuery(
            span_of(span_text.get("from"), span_text.get("to"), now), tuple(zone_ids)
        )
        request = json.dumps(query.to_json()).encode()
        started = time.perf_counter()
        reply = await bus.request(SUBJECT + "edge-1", request, 10.0)
        took = (time.perf_counter() - started) * 1000
    finally:
        await bus.close()
    return {
        "request_bytes": len(request),
        "reply_bytes": len(reply),
        "reply_json_bytes": len(zlib.decompress(reply)),
        "reply_ms": round(took, 1),
    }


def run(workdir: Path, zones: int, busy: int, requests: int) -> dict[str, Any]:
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    nats, url = nats_server(workdir)
    cluster = ("--cluster", url)
    api = Pullzone(workdir / "api", 1, role="api", extra=(*cluster, "--node-id", "api"))
    edges = [
        Pullzone(workdir / name, 1, role="edge", extra=(*cluster, "--node-id", name))
        for name in ("edge-1", "edge-2")
    ]
    try:
        for node in (api, *edges):
            node.start()
        started = time.perf_counter()
        made = create_zones(api, zones, f"http://127.0.0.1:{origin.server_port}")
        created = time.perf_counter() - started
        asyncio.run(until_applied(url, {"api", "edge-1", "edge-2"}))
        applied = time.perf_counter() - started
        sent = traffic(edges, made[:busy])
        until_counted(api, sent)
        ids = [int(z["id"]) for z in made]
        result: dict[str, Any] = {
            "zones": zones,
            "busy_zones": busy,
            "requests_sent": sent,
            "create_s": round(created, 1),
            "applied_everywhere_s": round(applied, 1),
            "spans": {},
        }
        for name, span in SPANS.items():
            result["spans"][name] = {
                **answers(api, span, requests),
                "node": asyncio.run(node_reply(url, ids, span)),
            }
    finally:
        for node in (api, *edges):
            node.stop()
        procs.stop(nats)
        origin.shutdown()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zones", type=int, default=2_000)
    parser.add_argument("--busy", type=int, default=300, help="zones with traffic")
    parser.add_argument("--requests", type=int, default=20, help="answers timed per span")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or BENCH / "results" / f"stats_size_{args.zones}.json"
    atexit.register(procs.stop_all)
    workdir = Path(tempfile.mkdtemp(prefix="pullzone-stats-size-"))
    try:
        result = run(workdir, args.zones, min(args.busy, args.zones), args.requests)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    result["machine"] = procs.machine()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.zones} zones (made in {result['create_s']} s), {result['busy_zones']} with "
        f"traffic ({result['requests_sent']} requests), 1 API node + 2 edges"
    )
    print("| span | answer JSON B | over the wire B | p50 ms | max ms | edge reply B (JSON B) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in result["spans"].items():
        n = s["node"]
        print(
            f"| {name} | {s['json_bytes']:,} | {s['wire_bytes']:,} ({s['encoding']}) | "
            f"{s['p50_ms']} | {s['max_ms']} | {n['reply_bytes']:,} ({n['reply_json_bytes']:,}) |"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
