#!/usr/bin/env python3
"""A node joining a cluster late (issue #20, a bounded stream): its start time from the
newest snapshot against a full replay of the stream, with 100,000 events in it.

    .venv/bin/python bench/late_join.py                    # 100,000 events
    .venv/bin/python bench/late_join.py --events 20000 --old /tmp/pz-old/src

One nats-server and one API node on this machine; one zone, then `--events` whole-zone
soft purges published straight to the stream (as the API would, without its round
trips), then a last zone. A new edge (`--role edge --workers 1`, empty data directory)
joins, and is timed from its start until it serves the last zone (it applies events in
order, so that is when it has caught up). With `--old SRC`, an edge running the code at
SRC (a checkout before snapshots, e.g. `git worktree add /tmp/pz-old 29c6a29`) joins the
same cluster the same way: the full replay. Writes bench/results/late_join.json.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from propagation import nats_server
from pzbench import procs
from pzbench.procs import Pullzone

from pullzone.bus.jetstream import JetStreamBus
from pullzone.zones.plan import PurgePlan

BENCH = Path(__file__).resolve().parent
PROBE = "/probe"


class _Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"probe\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


async def publish(url: str, zone_id: int, events: int) -> tuple[float, float]:
    """`events` soft purges of the zone, 256 in flight at a time, then until the API node
    applied them all (its registry entry); seconds taken by each."""
    bus = await JetStreamBus.connect([url], "bench-publisher", role="tool", replicas=1)
    payload = PurgePlan(whole_zone=True, delete=False).to_payload()
    started = time.perf_counter()
    try:
        for first in range(0, events, 256):
            batch = range(first, min(events, first + 256))
            await asyncio.gather(*(bus.publish(PurgePlan.KIND, zone_id, payload) for _ in batch))
        published = time.perf_counter() - started
        last = await bus.last_stream_seq()
        while not any(
            n["node"] == "api" and n.get("applied", 0) >= last for n in await bus.nodes()
        ):
            await asyncio.sleep(0.2)
    finally:
        await bus.close()
    return published, time.perf_counter() - started


def joined(workdir: Path, name: str, cluster: tuple[str, ...], host: str) -> dict[str, float]:
    """A new edge's start: until its edge port accepts, and until it serves `host`."""
    edge = Pullzone(workdir / name, 1, role="edge", extra=(*cluster, "--node-id", name))
    started = time.monotonic()
    edge.start(timeout=600)
    listening = time.monotonic() - started
    with httpx.Client(base_url=f"http://127.0.0.1:{edge.port}", timeout=10) as client:
        while client.get(PROBE, headers={"Host": host}).status_code != 200:
            if time.monotonic() - started > 600:
                raise RuntimeError(f"{name} did not serve {host} within 600 s")
            time.sleep(0.02)
    caught_up = time.monotonic() - started
    log = (edge.dir / "serve.log").read_text(errors="replace")
    edge.stop()
    return {
        "listening_s": round(listening, 2),
        "caught_up_s": round(caught_up, 2),
        "from_snapshot": "started from snapshot" in log,
    }


def run(workdir: Path, events: int, old: Path | None) -> dict[str, Any]:
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    nats, url = nats_server(workdir)
    cluster = ("--cluster", url)
    api = Pullzone(workdir / "api", 1, role="api", extra=(*cluster, "--node-id", "api"))
    api.start()
    origin_url = f"http://127.0.0.1:{origin.server_port}"
    try:
        first = api.create_zone("early", origin_url)
        took, applied = asyncio.run(publish(url, int(first["id"]), events))
        # The API node writes a snapshot when one is due (at most 10,000 events or 15 min
        # behind), looking every 5 s: the newest then covers all but the last few events.
        time.sleep(6)
        last = api.create_zone("last", origin_url)  # after every purge
        host = "last.localhost"
        assert last["fqdn"] == host, last
        result: dict[str, Any] = {
            "events": events,
            "publish_s": round(took, 2),
            "api_applied_s": round(applied, 2),
            "snapshot": joined(workdir, "late-new", cluster, host),
        }
        if old is not None:
            os.environ["PYTHONPATH"] = str(old)
            try:
                result["full_replay"] = joined(workdir, "late-old", cluster, host)
            finally:
                del os.environ["PYTHONPATH"]
    finally:
        api.stop()
        procs.stop(nats)
        origin.shutdown()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--old", type=Path, help="src/ of a checkout before snapshots")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "late_join.json")
    args = parser.parse_args()
    atexit.register(procs.stop_all)
    workdir = Path(tempfile.mkdtemp(prefix="pullzone-late-join-"))
    try:
        result = run(workdir, args.events, args.old)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    result["machine"] = procs.machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.events} events in the stream (published in {result['publish_s']} s)")
    for what in ("snapshot", "full_replay"):
        if what in result:
            r = result[what]
            print(
                f"  {what:<12} listening after {r['listening_s']} s, caught up after "
                f"{r['caught_up_s']} s (from a snapshot: {r['from_snapshot']})"
            )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
