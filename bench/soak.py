#!/usr/bin/env python3
"""A bounded soak (issue #7): pullzone under mixed traffic for a fixed time, with memory,
open files and errors read at the start and at the end.

    .venv/bin/python bench/soak.py                 # 10 minutes
    .venv/bin/python bench/soak.py --minutes 1

wrk asks for random paths among 20,000 objects of an origin on loopback (max-age 30 s,
ETag and 304 answers: HITs, MISSes, EXPIRED/REVALIDATED), with 32 connections; a thread
purges once a second (files, tags, soft and hard, a whole zone every 30 s). Everything
stops by itself after --minutes.

Then an endless-body phase: --endless requests (4 at a time) for paths whose origin body
never ends (chunked; the origin stops at 64 MiB or when the edge closes), each client
reading a random 0-24 MiB and leaving, with --max-object-size 16MiB: the cache directory
must stay under --max-cache-size, the origin must stop soon after each client, and no
worker may exit.

Then a slowloris wave (--slowloris connections sending a header line every 2 s, never
finishing their head) beside a HIT load of 200 warm objects: each must get its 408 at
the head deadline; and, as root, a full-disk phase: the data directory is a 512 MiB tmpfs
of its own, filled to the last byte while the HIT load runs. HITs must not fail in
either, and no worker may exit. Writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import contextlib
import atexit
import datetime
import hashlib
import http.server
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pzbench import procs
from pzbench.load import WrkResult, wrk
from pzbench.procs import Pullzone

BENCH = Path(__file__).resolve().parent
OBJECTS = 20_000
HOST = "soak.localhost"
MIB = 1024 * 1024
MAX_CACHE = 64 * MIB
MAX_OBJECT = 16 * MIB
ENDLESS_BOUND = 64 * MIB  # what the endless origin sends at most, per request
ENDLESS_CHUNK = 64 * 1024


class _Endless:
    """What the endless origin sent (all requests), and how many answers are still open."""

    lock = threading.Lock()
    sent = 0
    open = 0


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/endless/"):
            self._endless()
            return
        body = (self.path * 40).encode()[:4096]
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", "max-age=30")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=30")
        self.send_header("ETag", etag)
        self.send_header("Surrogate-Key", f"t{hash(self.path) % 50}")
        self.end_headers()
        self.wfile.write(body)

    def _endless(self) -> None:
        """A chunked body that never ends (bounded at ENDLESS_BOUND, then cut)."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Cache-Control", "max-age=600")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"%x\r\n%s\r\n" % (ENDLESS_CHUNK, os.urandom(ENDLESS_CHUNK))
        with _Endless.lock:
            _Endless.open += 1
        try:
            for _ in range(ENDLESS_BOUND // ENDLESS_CHUNK):
                self.wfile.write(chunk)
                with _Endless.lock:
                    _Endless.sent += ENDLESS_CHUNK
        except OSError:
            pass  # the edge closed the connection
        finally:
            with _Endless.lock:
                _Endless.open -= 1

    def log_message(self, *args: Any) -> None:
        pass


def processes(root: int) -> list[int]:
    pids, todo = [root], [root]
    while todo:
        pid = todo.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
        pids += [int(c) for c in children]
    return pids


def reading(pz: Pullzone) -> dict[str, Any]:
    assert pz.process is not None
    pids = processes(pz.process.pid)
    rss, fds = {}, {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss[pid] = int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            fds[pid] = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, StopIteration):
            continue
    cache = pz.data_dir / "cache"
    return {
        "at": time.time(),
        "processes": len(rss),
        "rss_mb_total": round(sum(rss.values()) / 1024, 1),
        "rss_mb_max_process": round(max(rss.values()) / 1024, 1),
        "open_files_total": sum(fds.values()),
        "cache_files": sum(1 for _ in cache.rglob("*") if _.is_file()),
        "part_files": sum(1 for _ in cache.rglob("*.part")),
        "db_mb": round(sum(f.stat().st_size for f in pz.data_dir.glob("*.db*")) / 2**20, 1),
    }


def sample(pz: Pullzone, stop: threading.Event, timeline: list[dict[str, Any]]) -> None:
    """Memory and open files every 30 s: growth that levels off, or not."""
    started = time.monotonic()
    while not stop.wait(30.0):
        now = reading(pz)
        timeline.append(
            {
                "s": round(time.monotonic() - started),
                "rss_mb_total": now["rss_mb_total"],
                "rss_mb_max_process": now["rss_mb_max_process"],
                "open_files_total": now["open_files_total"],
            }
        )


def cache_bytes(pz: Pullzone) -> int:
    """Bytes of the cache directory's files (a file with two names counted once)."""
    sizes = {}
    for path in (pz.data_dir / "cache").rglob("*"):
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file():
            sizes[stat.st_ino] = stat.st_size
    return sum(sizes.values())


def endless_phase(pz: Pullzone, requests: int) -> dict[str, Any]:
    """Clients of endless bodies, each reading a random amount and leaving (bounded)."""
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.wait(0.01):
            peak = max(peak, cache_bytes(pz))

    def client(i: int) -> int:
        wanted = random.randint(0, 24 * MIB)
        read = 0
        try:
            with (
                httpx.Client(timeout=30) as http,
                http.stream(
                    "GET", f"http://127.0.0.1:{pz.port}/endless/{i}", headers={"Host": HOST}
                ) as response,
            ):
                for data in response.iter_raw(ENDLESS_CHUNK):
                    read += len(data)
                    if read >= wanted:
                        break
        except httpx.HTTPError:
            pass  # counted below as bytes read
        return read

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        read = sum(pool.map(client, range(requests)))
    settle = time.monotonic() + 30  # the edge closes its origin connections soon after
    while _Endless.open and time.monotonic() < settle:
        time.sleep(0.1)
    stop.set()
    watcher.join(5)
    return {
        "requests": requests,
        "seconds": round(time.monotonic() - started, 1),
        "client_mb_read": round(read / MIB, 1),
        "origin_mb_sent": round(_Endless.sent / MIB, 1),
        "origin_answers_still_open": _Endless.open,
        "cache_mb_peak": round(peak / MIB, 2),
        "cache_mb_limit": MAX_CACHE // MIB,
        "part_files_at_end": sum(1 for _ in (pz.data_dir / "cache").rglob("*.part")),
    }


def hit_load(pz: Pullzone, pathfile: Path, seconds: int) -> dict[str, Any]:
    """wrk over objects just warmed: every answer should be a 200 from the cache."""
    result = wrk(
        f"http://127.0.0.1:{pz.port}/", HOST, threads=1, connections=8, duration=seconds,
        mode="cycle", pathfile=pathfile,
    )  # fmt: skip
    return {"requests": result.requests, "errors": result.errors}


def slowloris_phase(pz: Pullzone, pathfile: Path, connections: int) -> dict[str, Any]:
    """`connections` clients that send one header line every 2 s and never finish their
    head, beside a HIT load: each must be cut at the head deadline, HITs must go on."""
    socks: list[socket.socket] = []
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", pz.port), timeout=5)
        s.sendall(f"GET /o/1.txt HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        socks.append(s)
    stop = threading.Event()

    def trickle() -> None:
        n = 0
        while not stop.wait(2.0):
            n += 1
            for s in socks:
                with contextlib.suppress(OSError):
                    s.sendall(f"X-Slow-{n}: 1\r\n".encode())

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    started = time.monotonic()
    hits = hit_load(pz, pathfile, 20)
    stop.set()
    feeder.join(5)
    answered = 0
    for s in socks:
        s.setblocking(False)
        with contextlib.suppress(OSError):
            if s.recv(64).startswith(b"HTTP/1.1 408"):
                answered += 1
        s.close()
    return {
        "connections": connections,
        "seconds": round(time.monotonic() - started, 1),
        "answered_408": answered,
        "hit_load": hits,
    }


def full_disk_phase(pz: Pullzone, pathfile: Path) -> dict[str, Any]:
    """The data disk (a tmpfs of its own) filled to the last byte beside a HIT load."""
    ballast = pz.data_dir / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (MIB, 4096, 1):
            chunk = b"\0" * size
            with contextlib.suppress(OSError):  # ENOSPC: full
                while os.write(fd, chunk):
                    pass
    finally:
        os.close(fd)
    try:
        free = shutil.disk_usage(pz.data_dir).free
        hits = hit_load(pz, pathfile, 20)
    finally:
        ballast.unlink()
    return {"free_bytes_while_full": free, "hit_load": hits}


def workers(pz: Pullzone) -> set[int]:
    assert pz.process is not None
    return set(processes(pz.process.pid)) - {pz.process.pid}


def purger(pz: Pullzone, zone_id: int, stop: threading.Event, counts: dict[str, int]) -> None:
    n = 0
    while not stop.wait(1.0):
        n += 1
        files = [f"/o/{random.randint(1, OBJECTS)}.txt" for _ in range(10)]
        try:
            if n % 30 == 0:
                pz.purge(zone_id)
            elif n % 3 == 0:
                assert pz.api is not None
                r = pz.api.post(f"/zones/http/pull/{zone_id}/purge", json={"tags": [f"t{n % 50}"]})
                if r.status_code != 200:
                    raise RuntimeError(r.text)
            else:
                pz.purge(zone_id, files, delete=n % 2 == 0)
            counts["purges"] += 1
        except Exception:  # counted and reported; the soak goes on
            counts["purge_errors"] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--endless", type=int, default=40, help="endless-body requests")
    parser.add_argument("--slowloris", type=int, default=1000, help="slowloris connections")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "soak.json")
    args = parser.parse_args()
    atexit.register(procs.stop_all)
    workdir = Path(tempfile.mkdtemp(prefix="pullzone-soak-"))
    # The server's data directory on a file system of its own, for the full-disk phase.
    on_tmpfs = os.geteuid() == 0
    if on_tmpfs:
        (workdir / "pz").mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(workdir / "pz")]
        subprocess.run(mount, check=True)
        atexit.register(subprocess.run, ["umount", "-l", str(workdir / "pz")], check=False)
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    origin.daemon_threads = True
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    pz = Pullzone(
        workdir / "pz",
        args.workers,
        max_cache_size=f"{MAX_CACHE // MIB}MiB",
        extra=("--max-object-size", f"{MAX_OBJECT // MIB}MiB"),
    ).start()
    paths = [f"/o/{i}.txt" for i in range(1, OBJECTS + 1)]
    random.shuffle(paths)
    pathfile = workdir / "paths.txt"
    pathfile.write_text("\n".join(paths) + "\n")
    url = f"http://127.0.0.1:{pz.port}/"

    def load(seconds: int) -> WrkResult:
        return wrk(
            url, HOST, threads=2, connections=32, duration=seconds, mode="cycle",
            pathfile=pathfile,
        )  # fmt: skip

    stop = threading.Event()
    counts = {"purges": 0, "purge_errors": 0}
    try:
        zone = pz.create_zone("soak", f"http://127.0.0.1:{origin.server_port}")
        load(5)  # warm up
        start = reading(pz)
        workers_at_start = workers(pz)
        thread = threading.Thread(target=purger, args=(pz, int(zone["id"]), stop, counts))
        thread.start()
        timeline: list[dict[str, Any]] = []
        sampler = threading.Thread(target=sample, args=(pz, stop, timeline), daemon=True)
        sampler.start()
        result_load = load(int(args.minutes * 60))
        stop.set()
        thread.join(10)
        end = reading(pz)
        settle = time.monotonic() + 10  # fills still streaming when the load stopped
        while end["part_files"] and time.monotonic() < settle:
            time.sleep(0.2)
            end = reading(pz)
        endless = endless_phase(pz, args.endless)
        hot = workdir / "hot.txt"
        hot.write_text("\n".join(f"/o/{i}.txt" for i in range(1, 201)) + "\n")
        hit_load(pz, hot, 3)  # warm: these 200 are HITs from here on
        slowloris = slowloris_phase(pz, hot, args.slowloris)
        full_disk = full_disk_phase(pz, hot) if on_tmpfs else {"skipped": "not root"}
        worker_exits = len(workers_at_start - workers(pz))
        alive = pz.process is not None and pz.process.poll() is None
    finally:
        stop.set()
        pz.stop()
        origin.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "minutes": args.minutes,
        "workers": args.workers,
        "requests": result_load.requests,
        "req_per_s": round(result_load.rps),
        "errors": {**result_load.errors, **counts},
        "start": start,
        "end": end,
        "timeline": timeline,
        "endless": endless,
        "slowloris": slowloris,
        "full_disk": full_disk,
        "worker_exits": worker_exits,
        "server_alive_at_end": alive,
        "machine": procs.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.minutes:g} min, {result_load.requests:,} requests ({result_load.rps:,.0f}/s), "
        f"{counts['purges']} purges"
    )
    print(f"errors: {result['errors']}")
    for name in (
        "rss_mb_total",
        "rss_mb_max_process",
        "open_files_total",
        "cache_files",
        "part_files",
        "db_mb",
    ):
        print(f"  {name:<20} start {start[name]:>10}   end {end[name]:>10}")
    print("  every 30 s (s, RSS total MB, RSS max process MB, open files):")
    print("  " + "  ".join(
        f"{t['s']}:{t['rss_mb_total']}/{t['rss_mb_max_process']}/{t['open_files_total']}"
        for t in timeline
    ))  # fmt: skip
    print(f"endless bodies: {endless}")
    print(f"slowloris: {slowloris}")
    print(f"full disk: {full_disk}")
    print(f"worker exits: {worker_exits}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
