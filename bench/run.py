#!/usr/bin/env python3
# ruff: noqa: RUF001
"""pullzone side by side with nginx (proxy_cache) and Varnish, on this machine.

    .venv/bin/python bench/run.py              # full run: 3 rounds (about 5 minutes)
    .venv/bin/python bench/run.py --quick      # 1 round, short runs (under a minute)
    .venv/bin/python bench/run.py --only S1,S2
    .venv/bin/python bench/run.py --only S15,S16 --rounds 1   # opt-in: ~20 minutes

Installs wrk, nginx and varnish from Debian packages when missing, starts one shared
origin (nginx serving static files) and the three caching proxies in front of it, runs
every scenario against each in turn (the order rotates every round), and prints a table
of medians, spreads and ratios. Writes bench/results/latest.json and latest.png.
See bench/README.md for what each scenario measures and how.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from pzbench import fill, load, procs, report, workload
from pzbench.procs import Nginx, Origin, Pullzone, PurgeUnavailable, Varnish
from pzbench.report import TARGETS, Row

from pullzone.edge.securetoken import sign
from pullzone.zones.blocks import SecureToken

BENCH = Path(__file__).resolve().parent
SCENARIOS = (
    "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "S11", "S2TLS", "S12",
    "S13", "S14", "S15", "S16",
)  # fmt: skip
# S15 (5 minutes per server) and S16 run only when named in --only: the default run stays
# ~10 minutes.
OPT_IN = ("S15", "S16")
DEFAULT_SCENARIOS = tuple(s for s in SCENARIOS if s not in OPT_IN)
TLS_SCENARIOS = ("S9", "S10", "S11", "S2TLS")  # pullzone and nginx only: Varnish has no TLS
PULLZONE_ONLY = ("S14",)  # pullzone against itself
TLS_TARGETS = ("pullzone", "nginx")
# The HTTPS rows' name: the SNI wrk and h2load send is the URL's host, so it must resolve
# to 127.0.0.1 here, and `localhost` is the one name sure to (`*.localhost` does not
# resolve on every machine: not on the one of the README's results). It is a cname of
# pullzone's zone "tls", whose certificate covers it and the zone's fqdn.
TLS_HOST = "localhost"
NO_TLS_VARNISH = "n/a (Varnish has no TLS)"
HOST = "bench.localhost"
PURGE_HOST = "purge.localhost"  # the zone of S4 (1k) and S5
NO_PURGE_API = "n/a (purge API not available)"
NGINX_NO_PURGE = "n/a (no purge API in nginx OSS)"

SMALL = 1024
TEXT = 100 * 1024  # S14's text object
GZ_HOST = "gz.localhost"  # S14's zone with compression on
PULLZONE_ONLY_NOTE = "n/a (pullzone only)"
LARGE = 50 * 1024 * 1024
TEN = 10 * 1024
SLOW = 256 * 1024
SLOW_RATE = "128k"  # nginx sends one second's worth at once: the S3 object takes ~1 s
PACED = 200 * 1024 * 1024  # S12's object, served at 16 MiB/s (configs/origin-nginx.conf)
LFO_HOST = "lfo.localhost"  # pullzone's zone with edge.lfo (S12)
MIB = 1024 * 1024  # S16's miss objects: every /mib/<N>.bin (configs/origin-nginx.conf)
S16_CACHE_KIB = 4 * 1024 * 1024  # S16's servers: 4 GiB of cache each (the misses fill it)
S16_GOAL_MS = 5.0


@dataclass
class Config:
    quick: bool
    only: tuple[str, ...]
    rounds: int
    duration: int  # seconds per wrk run
    workers: int
    objects: int  # S4/S7 index size
    linked: int  # of which have body files (S7's HIT workload)
    s8_objects: int
    burst_clients: int
    purge_reps: int  # whole-zone purges per round (S4)
    list_reps: int  # 1,000-file purges per round (S5)
    s15_duration: int = 300  # seconds of S15's wrk run, per server
    s15_objects: int = 200_000
    s15_fraction: float = 0.3  # of the objects' bytes, every server's cache budget
    s16_duration: int = 60  # seconds of S16's two parallel wrk runs, per server
    s16_rate: float = 1000.0  # misses per second S16 asks for

    def wants(self, scenario: str) -> bool:
        return scenario in self.only

    def wants_tls(self) -> bool:
        return any(s in self.only for s in TLS_SCENARIOS)

    def wants_varnish(self) -> bool:
        """Every scenario but the HTTPS ones has Varnish in it."""
        return any(s not in TLS_SCENARIOS + PULLZONE_ONLY for s in self.only)


def human_count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def log(msg: str) -> None:
    print(msg, flush=True)


def p50(values: list[float]) -> float:
    return statistics.median(values)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Bench:
    def __init__(self, cfg: Config, tmp: Path) -> None:
        self.cfg = cfg
        self.tmp = tmp
        self.root = tmp / "origin-files"
        self.paths_dir = tmp / "paths"
        self.paths_dir.mkdir()
        self.origin = Origin(tmp / "origin", self.root, SLOW_RATE)
        self.pz = Pullzone(tmp / "pullzone", cfg.workers)
        self.nginx = Nginx(tmp / "nginx", 0, cfg.workers)
        self.varnish = Varnish(tmp / "varnish", 0)
        self.services: dict[str, procs.Service] = {}
        self.zones: dict[str, dict[str, Any]] = {}
        self.purge_api = True
        self.rows: dict[str, Row] = {}
        self.timings: dict[str, float] = {}
        self.tls_dir = tmp / "tls"
        self.cafile = self.tls_dir / "ca.pem"
        self.tls_verify: ssl.SSLContext | None = None
        self.tls_sessions: dict[str, dict[str, str]] = {}
        self.noresume: Path | None = None
        n_big = human_count(cfg.objects)
        self._define_rows(n_big)

    # -- rows -------------------------------------------------------------------------

    def _define_rows(self, n_big: str) -> None:
        d = self.cfg.duration
        defs = [
            Row(
                "S1",
                f"1 KiB HIT, wrk -t2 -c64 -d{d}s",
                "req/s",
                True,
                goal="≥0.75× nginx and ≥1.0× Varnish",
            ),
            Row("S2", f"50 MiB HIT, wrk -t2 -c8 -d{d}s", "GB/s", True, goal="≥0.9× nginx"),
            Row(
                "S3",
                f"{self.cfg.burst_clients} concurrent GETs of one cold object",
                "requests",
                False,
                goal="exactly 1 origin request",
            ),
            Row(
                "S4 1k", "whole-zone purge answer, p50, 1k objects", "ms", False, goal="p50 < 5 ms"
            ),
            Row(
                f"S4 {n_big}",
                f"whole-zone purge answer, p50, {n_big} objects",
                "ms",
                False,
                goal="p50 < 5 ms",
            ),
            Row("S5", "purge of 1,000 listed files, p50", "ms", False, goal="p50 < 100 ms"),
            Row(
                "S13",
                f"1 KiB HIT, signed URL (securetoken Q) + domainlock Referer check, "
                f"wrk -t2 -c64 -d{d}s",
                "req/s",
                True,
                goal="≥0.85× pullzone S1",
            ),
            Row("S6", "1 KiB HIT while 1 purge/s arrives", "req/s", True, goal="within 5 % of S1"),
            Row(
                "S7 idle",
                f"RSS of one edge worker, {n_big} objects indexed, idle",
                "MB",
                False,
                goal="< 256 MB",
            ),
            Row(
                "S7",
                f"same, after one HIT on each of {human_count(self.cfg.linked)} objects",
                "MB",
                False,
                goal="< 256 MB",
            ),
            Row("S8 cold", f"{self.cfg.s8_objects:,} × 10 KiB, cold pass, 64 conns", "req/s", True),
            Row(
                "S8 warm",
                f"{self.cfg.s8_objects:,} × 10 KiB, warm, wrk -c64 -d{1 if self.cfg.quick else d}s",
                "req/s",
                True,
            ),
            Row("S8 warm 2", "same, second warm run", "req/s", True),
            Row("S8 origin", "origin requests, S8 all passes", "requests", False),
            Row(
                "S9",
                f"1 KiB HIT over TLS, HTTP/1.1 keep-alive, wrk -t2 -c64 -d{d}s",
                "req/s",
                True,
                goal="≥0.9× nginx TLS",
            ),
            Row(
                "S10",
                f"1 KiB HIT over HTTP/2, h2load -t2 -c64 -m10 -n{20 * d}k",
                "req/s",
                True,
                goal="≥0.5× nginx HTTP/2",
            ),
            Row(
                "S11",
                "new TLS handshakes/s (1 request per connection, no resumption), "
                f"h2load --h1 -t2 -c64 -n{1000 * d}",
                "req/s",
                True,
                goal="≥0.8× nginx",
            ),
            Row(
                "S2tls",
                f"50 MiB HIT over TLS, wrk -t2 -c8 -d{d}s",
                "GB/s",
                True,
                goal="≥0.7× nginx TLS",
            ),
            Row(
                "S12",
                "cold 200 MiB object, origin at 16 MiB/s: a 100-byte Range at 75 %, "
                "time to its last byte",
                "ms",
                False,
                goal="≤ nginx (slice 1m)",
            ),
            Row(
                "S14 off",
                f"100 KiB text HIT, compression off, Accept-Encoding: br, wrk -t2 -c64 -d{d}s",
                "req/s",
                True,
            ),
            Row(
                "S14",
                "same, compression on (brotli variant stored)",
                "req/s",
                True,
                goal="≥0.9× S14 off, 1 compression",
            ),
        ]
        defs += self._s15_rows() + self._s16_rows()
        for row in defs:
            self.rows[row.id] = row
        self.big_row = f"S4 {n_big}"

    def _s15_rows(self) -> list[Row]:
        c = self.cfg
        return [
            Row(
                "S15",
                f"Zipf(1.0) over {human_count(c.s15_objects)} objects of 1-100 KiB, cache "
                f"{c.s15_fraction:.0%} of their bytes, wrk -t2 -c64 -d{c.s15_duration}s",
                "req/s",
                True,
                goal="≥1.0× nginx, hit ratio ≥ nginx's, p99 ≤ nginx's",
            ),
            Row("S15 hit", "same: X-Cache HIT ratio", "%", True),
            Row(
                "S15 hit @N",
                "same, over each server's first N answers (N: the fewest any server gave)",
                "%",
                True,
            ),
            Row("S15 p50", "same: latency p50", "ms", False),
            Row("S15 p99", "same: latency p99", "ms", False),
            Row("S15 origin", "same: origin requests", "requests", False),
            Row(
                "S15 cache",
                "same: cache size / its limit (pullzone: the largest seen, every 2 s; "
                "nginx, Varnish: at the end)",
                "%",
                False,
                goal="pullzone ≤ 101 %",
            ),
        ]

    def _s16_rows(self) -> list[Row]:
        c = self.cfg
        return [
            Row(
                "S16 p99",
                f"1 KiB HIT (S1's object, wrk -t1 -c16 -d{c.s16_duration}s) while "
                f"{c.s16_rate:,.0f} misses/s of 1 MiB are asked: p99",
                "ms",
                False,
                goal=f"p99 ≤ {S16_GOAL_MS:.0f} ms",
            ),
            Row("S16 p50", "same: p50", "ms", False),
            Row("S16 max", "same: max", "ms", False),
            Row("S16 HIT", "same: HIT req/s", "req/s", True),
            Row("S16 misses", "same: 1 MiB misses answered per second", "req/s", True),
            Row(
                "S16 idle p99",
                f"the same HIT wrk alone, -d{c.duration}s, before the misses: p99",
                "ms",
                False,
            ),
        ]

    def row_list(self) -> list[Row]:
        return [r for r in self.rows.values() if r.values or r.notes]

    # -- setup ------------------------------------------------------------------------

    def make_files(self) -> None:
        root = self.root
        (root / "slow").mkdir(parents=True)
        (root / "big").mkdir()
        (root / "1k.bin").write_bytes(os.urandom(SMALL))
        (root / "s6.bin").write_bytes(os.urandom(SMALL))
        (root / "big" / "0.bin").write_bytes(os.urandom(SMALL))
        (root / "slow" / "256k.bin").write_bytes(os.urandom(SLOW))
        with open(root / "50m.bin", "wb") as f:
            block = os.urandom(1024 * 1024)
            for _ in range(LARGE // len(block)):
                f.write(block)
        (root / "paced").mkdir()
        with open(root / "paced" / "200m.bin", "wb") as f:
            f.truncate(PACED)  # sparse: its bytes do not matter, only how fast they come
        (root / "10k.bin").write_bytes(os.urandom(TEN))  # every /ten/<N>.bin (see config)
        lines = b"".join(
            b"%06d pullzone compresses text once per coding\n" % i for i in range(3000)
        )
        (root / "100k.txt").write_bytes(lines[:TEXT])  # text/plain (configs/origin-nginx.conf)
        workload.write_origin_files(root)  # S15: z/<K>k.bin, K = 1..100
        (root / "1m.bin").write_bytes(os.urandom(MIB))  # S16: every /mib/<N>.bin

    def make_certificate(self) -> None:
        """One trustme CA and one leaf for the bench's TLS names, for pullzone's zone "tls"
        (through the API) and nginx's `ssl_certificate` (files) alike."""
        import trustme  # the project's test dependency, in the venv

        self.tls_dir.mkdir()
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.cafile))
        leaf = ca.issue_cert(TLS_HOST, "tls.localhost")
        self.tls_crt = leaf.cert_chain_pems[0].bytes().decode()
        self.tls_key = leaf.private_key_pem.bytes().decode()
        (self.tls_dir / "leaf.pem").write_text(self.tls_crt)
        key = self.tls_dir / "leaf.key"
        key.write_text(self.tls_key)
        key.chmod(0o600)
        self.tls_verify = ssl.create_default_context(cafile=str(self.cafile))
        self.nginx.enable_tls(self.tls_dir / "leaf.pem", key)
        self.pz.enable_tls()
        if self.cfg.wants("S11"):
            self.noresume = self.build_noresume()

    def build_noresume(self) -> Path | None:
        """pzbench/noresume.c as an LD_PRELOAD library: h2load without TLS resumption."""
        out = self.tls_dir / "noresume.so"
        src = BENCH / "pzbench" / "noresume.c"
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            log("  S11: no C compiler for pzbench/noresume.c: S11 is skipped")
            return None
        r = subprocess.run(
            [cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(src), "-ldl"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if r.returncode != 0:
            log(f"  S11: building pzbench/noresume.c failed, S11 is skipped:\n{r.stderr}")
            return None
        return out

    def tls_base(self, name: str) -> str:
        svc = self.pz if name == "pullzone" else self.nginx
        return f"https://{TLS_HOST}:{svc.tls_port}"

    def setup_tls(self) -> None:
        zone = self.pz.create_zone("tls", self.origin.base, cnames=TLS_HOST)
        self.zones["tls"] = zone
        self.pz.install_certificate(int(zone["id"]), self.tls_crt, self.tls_key, http2=True)
        time.sleep(0.5)  # served from the next handshake on: let the workers see it
        for name in TLS_TARGETS:
            svc = self.pz if name == "pullzone" else self.nginx
            self.tls_sessions[name] = load.tls_session(svc.tls_port, TLS_HOST, self.cafile)
            seen = [
                load.warm(self.tls_base(name), TLS_HOST, p, verify=self.tls_verify)
                for p in ("/1k.bin", "/50m.bin")
            ]
            log(f"  warmed {name} over TLS: X-Cache {seen}; handshake {self.tls_sessions[name]}")
        a, b = (self.tls_sessions[n] for n in TLS_TARGETS)
        keys = ("Protocol version", "Ciphersuite", "Negotiated TLS1.3 group", "Peer signature type")
        if any(a.get(k) != b.get(k) for k in keys):
            log("  note: pullzone and nginx negotiate different TLS parameters (see above)")

    def start(self) -> None:
        t0 = time.monotonic()
        self.make_files()
        if self.cfg.wants_tls():
            self.make_certificate()
        log(f"origin files written in {time.monotonic() - t0:.1f} s")
        self.origin.start()
        self.nginx.origin_port = self.origin.port
        self.varnish.origin_port = self.origin.port
        servers: list[procs.Service] = [self.nginx, self.pz]
        if self.cfg.wants_varnish():
            servers.append(self.varnish)
        with ThreadPoolExecutor(3) as pool:  # independent: start them side by side
            for future in [pool.submit(s.start) for s in servers]:
                future.result()
        self.services = {s.name: s for s in servers}
        t_files = time.monotonic()
        for alias in ("bench", "purge"):
            self.zones[alias] = self.pz.create_zone(alias, self.origin.base)
        if self.cfg.wants("S12"):
            self.zones["lfo"] = self.pz.create_zone("lfo", self.origin.base, edge={"lfo": "Y"})
        if self.cfg.wants("S14"):
            self.zones["gz"] = self.pz.create_zone(
                "gz", self.origin.base, edge={"compression": "Y", "compressionlevel": "6"}
            )
        if self.cfg.wants("S4") or self.cfg.wants("S7"):
            # The one real object the big index is copied from (see pzbench/fill.py).
            self.zones["big"] = self.pz.create_zone("big", self.origin.base)
            xcache = load.warm(
                self.pz.base, f"{self.zones['big']['alias']}.localhost", "/big/0.bin"
            )
            if not xcache.upper().startswith("HIT"):
                raise RuntimeError(f"template object not cached (X-Cache {xcache!r})")
        log(
            f"origin :{self.origin.port}  pullzone :{self.pz.port} (api :{self.pz.api_port}, "
            f"{self.cfg.workers} workers)  nginx :{self.nginx.port} "
            f"({self.cfg.workers} workers)"
            + (f"  varnish :{self.varnish.port}" if "varnish" in self.services else "")
            + (
                f"  HTTPS: pullzone :{self.pz.tls_port}, nginx :{self.nginx.tls_port}"
                if self.cfg.wants_tls()
                else ""
            )
        )
        for name, svc in self.services.items():
            seen = [load.warm(svc.base, HOST, p) for p in ("/1k.bin", "/50m.bin", "/s6.bin")]
            log(f"  warmed {name}: X-Cache {seen}")
        if self.cfg.wants_tls():
            self.setup_tls()
        log(f"servers started and warmed in {time.monotonic() - t_files:.1f} s")
        if self.cfg.wants("S4") or self.cfg.wants("S5"):
            t1 = time.monotonic()
            self.prefill_listed()
            log(f"1,000 objects cached in zone purge in {time.monotonic() - t1:.1f} s")
        self.timings["setup"] = round(time.monotonic() - t0, 1)
        log(f"setup took {self.timings['setup']} s")

    def listed_paths(self) -> list[str]:
        return [f"/ten/{i}.bin" for i in range(1000)]

    def prefill_listed(self) -> None:
        """1,000 objects in pullzone's zone "purge" (S4 at 1k, S5), and in Varnish under
        that Host (its reference numbers). S4's soft whole-zone purges leave them indexed;
        S5 ends with a hard purge of all 1,000 and caches them again."""

        def one(svc: procs.Service) -> None:
            statuses = load.fetch_all(svc.base, PURGE_HOST, self.listed_paths())
            if set(statuses) != {200}:
                raise RuntimeError(f"prefill on {svc.name}: {statuses}")

        with ThreadPoolExecutor(2) as pool:
            for job in [pool.submit(one, svc) for svc in (self.pz, self.varnish)]:
                job.result()

    # -- scenarios --------------------------------------------------------------------

    def order(self, r: int, targets: tuple[str, ...] = TARGETS) -> list[str]:
        k = r % len(targets)
        return list(targets[k:] + targets[:k])

    def s1(self, r: int, row_id: str = "S1") -> None:
        row = self.rows[row_id]
        for name in self.order(r):
            svc = self.services[name]
            xcache = load.warm(svc.base, HOST, "/1k.bin")
            res = load.wrk(
                svc.base + "/1k.bin", HOST, threads=2, connections=64, duration=self.cfg.duration
            )
            row.add(name, res.rps)
            row.extra.setdefault(name, []).append({**res.as_dict(), "x_cache": xcache})
            log(
                f"  {row_id} {name:8} {res.rps:10,.0f} req/s  p99 "
                f"{res.latency_us['p99'] / 1000:.1f} ms  errors {res.error_count}"
            )

    def s13(self, r: int) -> None:
        """S1's HIT through a zone that checks signed URLs and the Referer (securetoken
        policy Q and domainlock; nginx and Varnish have no counterpart measured here)."""
        row = self.rows["S13"]
        row.notes.update(nginx="—", varnish="—")
        if "signed" not in self.zones:
            token = {"enabled": "Y", "policy": "Q", "list": "bench-secret", "timeout": 3600}
            lock = {"enabled": "Y", "policy": "Y", "list": "example.com"}
            self.zones["signed"] = self.pz.create_zone(
                "signed", self.origin.base, securetoken=token, domainlock=lock
            )
        block = SecureToken(enabled=True, policy="Q", secret="bench-secret")
        target = sign(block, "/1k.bin", int(time.time()) + 3600)
        host = f"{self.zones['signed']['alias']}.localhost"
        xcache = load.warm(self.pz.base, host, target)
        res = load.wrk(
            self.pz.base + target,
            host,
            threads=2,
            connections=64,
            duration=self.cfg.duration,
            headers=("Referer: https://www.example.com/page",),
        )
        row.add("pullzone", res.rps)
        row.extra.setdefault("pullzone", []).append({**res.as_dict(), "x_cache": xcache})
        log(f"  S13 pullzone {res.rps:10,.0f} req/s  errors {res.error_count}")

    def s2(self, r: int) -> None:
        row = self.rows["S2"]
        for name in self.order(r):
            svc = self.services[name]
            xcache = load.warm(svc.base, HOST, "/50m.bin")
            res = load.wrk(
                svc.base + "/50m.bin", HOST, threads=2, connections=8, duration=self.cfg.duration
            )
            row.add(name, res.bytes_per_s / 1e9)
            row.extra.setdefault(name, []).append({**res.as_dict(), "x_cache": xcache})
            log(
                f"  S2 {name:8} {res.bytes_per_s / 1e9:10.2f} GB/s  "
                f"({res.requests} responses, errors {res.error_count})"
            )

    def s3(self, r: int) -> None:
        row = self.rows["S3"]
        for name in self.order(r):
            svc = self.services[name]
            prefix = f"/u/s3-{name}-r{r}/"
            res = load.burst(
                svc.port, HOST, prefix + "slow/256k.bin", clients=self.cfg.burst_clients
            )
            time.sleep(0.3)  # the origin logs a request when it has sent it
            n = self.origin.count(prefix)
            row.add(name, n)
            row.extra.setdefault(name, []).append({"origin_requests": n, **res.as_dict()})
            ok = res.statuses.get(200, 0)
            log(
                f"  S3 {name:8} origin requests {n}  ({ok}/{res.clients} answered 200, "
                f"all done in {res.wall_ms:.0f} ms, X-Cache {res.xcache})"
            )

    def s12(self, r: int) -> None:
        """A seek into a cold large object: pullzone's edge.lfo slices, nginx's slice
        module; Varnish fetches the object from byte 0 and answers the range when its
        bytes arrive."""
        row = self.rows["S12"]
        row.reference.add("varnish")
        at = PACED * 3 // 4
        for name in self.order(r):
            svc = self.services[name]
            path = f"/s12/{name}-r{r}/paced/200m.bin"
            host = LFO_HOST if name == "pullzone" else HOST
            status, ms = load.range_ms(svc.port, host, path, at, 100)
            if status != 206:
                raise RuntimeError(f"S12 {name}: status {status}, or not 100 bytes")
            row.add(name, ms)
            time.sleep(0.3)  # the origin logs a request when it has sent it
            asked = self.origin.count(f"/s12/{name}-r{r}/")
            row.extra.setdefault(name, []).append({"ms": round(ms, 1), "origin_requests": asked})
            log(f"  S12 {name:8} {ms:8.1f} ms to the range's bytes (origin requests {asked})")

    def s4_small(self, r: int) -> None:
        row = self.rows["S4 1k"]
        zone_id = self.zones["purge"]["id"]
        if self.purge_api:
            times = self._purge_series(self.pz, zone_id, self.cfg.purge_reps)
            if times is not None:
                row.add("pullzone", p50(times))
                row.extra.setdefault("pullzone", []).append(_lat(times))
                log(
                    f"  S4 pullzone whole-zone purge, 1k objects: p50 {p50(times):.2f} ms "
                    f"max {max(times):.2f} ms ({len(times)} purges)"
                )
        if not self.purge_api:
            row.notes["pullzone"] = NO_PURGE_API
        row.notes["nginx"] = NGINX_NO_PURGE
        # Varnish: a ban on the zone's Host, sent over HTTP (BAN method, see the VCL).
        row.reference.add("varnish")
        times = []
        with httpx.Client(base_url=self.varnish.base, timeout=30) as client:
            for _ in range(self.cfg.purge_reps):
                t0 = time.perf_counter()
                resp = client.request("BAN", "/", headers={"Host": PURGE_HOST})
                times.append((time.perf_counter() - t0) * 1000)
                if resp.status_code != 200:
                    raise RuntimeError(f"varnish BAN answered {resp.status_code}")
                time.sleep(0.01)
        row.add("varnish", p50(times))
        row.extra.setdefault("varnish", []).append(_lat(times))
        log(f"  S4 varnish ban (reference): p50 {p50(times):.2f} ms")

    def _purge_series(
        self, pz: Pullzone, zone_id: int, reps: int, files: list[str] | None = None
    ) -> list[float] | None:
        times = []
        try:
            for _ in range(reps):
                times.append(pz.purge(zone_id, files))
                time.sleep(0.01)
        except PurgeUnavailable as exc:
            log(f"  purge API not available (404): {exc}")
            self.purge_api = False
            return None
        return times

    def s5(self, r: int) -> None:
        row = self.rows["S5"]
        zone_id = self.zones["purge"]["id"]
        files = self.listed_paths()
        row.notes["nginx"] = NGINX_NO_PURGE
        if self.purge_api:
            times = self._purge_series(self.pz, zone_id, self.cfg.list_reps, files)
            if times is not None:
                hard = self.pz.purge(zone_id, files, delete=True)
                row.add("pullzone", p50(times))
                row.extra.setdefault("pullzone", []).append({**_lat(times), "hard_ms": hard})
                log(
                    f"  S5 pullzone purge of 1,000 files: soft p50 {p50(times):.1f} ms, "
                    f"hard (delete=true) {hard:.1f} ms"
                )
        if not self.purge_api:
            row.notes["pullzone"] = NO_PURGE_API
        # Varnish: 1,000 PURGE requests, pipelined on one connection (no batch purge).
        row.reference.add("varnish")
        ms = load.pipelined(self.varnish.port, PURGE_HOST, "PURGE", files)
        row.add("varnish", ms)
        row.extra.setdefault("varnish", []).append({"pipelined_purges_ms": ms})
        log(f"  S5 varnish 1,000 pipelined PURGEs (reference): {ms:.1f} ms")
        self.prefill_listed()  # the hard purges emptied both caches

    def s6(self, r: int) -> None:
        row = self.rows["S6"]
        row.notes["nginx"] = NGINX_NO_PURGE
        if not self.purge_api:
            row.notes["pullzone"] = NO_PURGE_API
        row.reference.add("varnish")
        for name in self.order(r, ("pullzone", "varnish")):
            if name == "pullzone" and not self.purge_api:
                continue
            svc = self.services[name]
            load.warm(svc.base, HOST, "/1k.bin")
            stop = threading.Event()
            purge_ms: list[float] = []
            failure: list[str] = []

            def purger(
                name: str = name,
                stop: threading.Event = stop,
                purge_ms: list[float] = purge_ms,
                failure: list[str] = failure,
            ) -> None:
                client = httpx.Client(base_url=self.varnish.base, timeout=30)
                try:
                    while not stop.wait(1.0):
                        if name == "pullzone":
                            purge_ms.append(self.pz.purge(self.zones["bench"]["id"], ["/s6.bin"]))
                        else:
                            t0 = time.perf_counter()
                            client.request("PURGE", "/s6.bin", headers={"Host": HOST})
                            purge_ms.append((time.perf_counter() - t0) * 1000)
                except PurgeUnavailable as exc:
                    failure.append(str(exc))
                except Exception as exc:
                    failure.append(repr(exc))
                finally:
                    client.close()

            thread = threading.Thread(target=purger, daemon=True)
            thread.start()
            try:
                res = load.wrk(
                    svc.base + "/1k.bin",
                    HOST,
                    threads=2,
                    connections=64,
                    duration=self.cfg.duration,
                )
            finally:
                stop.set()
                thread.join(30)
            if failure and name == "pullzone" and not purge_ms:
                self.purge_api = False
                row.notes["pullzone"] = NO_PURGE_API
                continue
            row.add(name, res.rps)
            row.extra.setdefault(name, []).append(
                {
                    **res.as_dict(),
                    "purges": len(purge_ms),
                    "purge_ms": [round(x, 2) for x in purge_ms],
                    "failure": failure or None,
                }
            )
            log(
                f"  S6 {name:8} {res.rps:10,.0f} req/s with {len(purge_ms)} purges "
                f"(errors {res.error_count})"
            )

    def s8(self, r: int) -> None:
        n = self.cfg.s8_objects
        for name in self.order(r):
            svc = self.services[name]
            prefix = f"/u/s8-{name}-r{r}/"
            pathfile = self.paths_dir / f"s8-{name}-r{r}.txt"
            pathfile.write_text("".join(f"{prefix}ten/{i}.bin\n" for i in range(n)))
            # After its share, a wrk thread asks for the cached 1 KiB object until the
            # last 10 KiB answer is in (see configs/wrk.lua): nothing cold is cut off.
            cold = load.wrk(
                svc.base + "/1k.bin",
                HOST,
                threads=2,
                connections=64,
                duration=30 if self.cfg.quick else 120,
                mode="cold",
                pathfile=pathfile,
                min_bytes=TEN // 2,
            )
            time.sleep(0.2)
            after_cold = self.origin.count(prefix)
            warm = load.wrk(
                svc.base + "/",
                HOST,
                threads=2,
                connections=64,
                duration=1 if self.cfg.quick else self.cfg.duration,
                mode="cycle",
                pathfile=pathfile,
            )
            time.sleep(0.2)
            total = self.origin.count(prefix)
            again = None
            if not self.cfg.quick:
                # Steady state: every worker has now met every object at least once.
                again = load.wrk(
                    svc.base + "/",
                    HOST,
                    threads=2,
                    connections=64,
                    duration=self.cfg.duration,
                    mode="cycle",
                    pathfile=pathfile,
                )
                self.rows["S8 warm 2"].add(name, again.rps)
                self.rows["S8 warm 2"].extra.setdefault(name, []).append(again.as_dict())
                time.sleep(0.2)
                total = self.origin.count(prefix)
            cold_rps = cold.cold_rps
            if cold_rps is None:
                log(f"  S8 {name}: the cold pass did not complete: {cold.as_dict()}")
            self.rows["S8 cold"].add(name, cold_rps)
            self.rows["S8 warm"].add(name, warm.rps)
            self.rows["S8 origin"].add(name, total)
            bad = sum(c["bad"] for c in cold.cold)
            self.rows["S8 cold"].extra.setdefault(name, []).append(
                {**cold.as_dict(), "origin_requests": after_cold, "non_200": bad}
            )
            self.rows["S8 warm"].extra.setdefault(name, []).append(
                {**warm.as_dict(), "origin_requests_during_warm": total - after_cold}
            )
            log(
                f"  S8 {name:8} cold {cold_rps or 0:8,.0f} req/s (origin {after_cold}, "
                f"non-200 {bad})  warm {warm.rps:8,.0f} req/s (origin +{total - after_cold}, "
                f"errors {warm.error_count})"
                + (f"  warm 2 {again.rps:8,.0f} req/s" if again is not None else "")
            )

    # -- S15, S16: servers of their own, one at a time ---------------------------------

    def _fresh(self, name: str, tag: str, budget_kib: int) -> procs.Service:
        """A new, empty `name` with a cache of `budget_kib` KiB, on the shared origin; its
        1 KiB object (S1's) cached. The same byte budget for all three: pullzone's
        --max-cache-size, nginx's max_size, Varnish's malloc storage."""
        workdir = self.tmp / f"{tag}-{name}"
        svc: procs.Service
        if name == "pullzone":
            pz = Pullzone(workdir, self.cfg.workers, max_cache_size=f"{budget_kib}KiB")
            pz.start()
            pz.create_zone("bench", self.origin.base)
            svc = pz
        elif name == "nginx":
            svc = Nginx(workdir, self.origin.port, self.cfg.workers, max_size=f"{budget_kib}k")
            svc.start()
        else:
            svc = Varnish(workdir, self.origin.port, storage=f"malloc,{budget_kib}k")
            svc.start()
        xcache = load.warm(svc.base, HOST, "/1k.bin")
        if not xcache.upper().startswith("HIT"):
            svc.stop()
            raise RuntimeError(f"{tag} {name}: /1k.bin not cached (X-Cache {xcache!r})")
        return svc

    def _discard(self, svc: procs.Service) -> None:
        svc.stop()
        shutil.rmtree(svc.dir, ignore_errors=True)  # S16 leaves GBs behind

    def _held(self, svc: procs.Service) -> dict[str, Any]:
        """What the cache holds at the end of the run, by the server's own count."""
        if isinstance(svc, Pullzone):
            assert svc.api is not None
            time.sleep(1.2)  # every worker's stats snapshot is newer (written once a second)
            text = svc.api.get(svc.api_url.removesuffix("/v2") + "/metrics").text
            got = {
                line.split()[0]: int(float(line.split()[-1]))
                for line in text.splitlines()
                if line.startswith(("pullzone_cache_bytes", "pullzone_cache_objects"))
                or line.startswith("pullzone_cache_evictions_total")
            }
            stored, used = workload.index_bytes(svc.data_dir / "cache.db")
            return {"metrics": got, "index_stored_bytes": stored, "index_used_bytes": used}
        if isinstance(svc, Nginx):
            files, size, blocks = workload.dir_bytes(svc.dir / "cache")
            return {"files": files, "bytes": size, "allocated_bytes": blocks}
        assert isinstance(svc, Varnish)
        names = ("SMA.s0.g_bytes", "SMA.s0.c_fail", "MAIN.n_object", "MAIN.n_lru_nuked")
        return workload.varnish_counters(svc.dir / "work", names)

    def s15(self, r: int) -> None:
        """Zipf(1.0) over `s15_objects` objects of 1-100 KiB, every server new and empty
        with the same byte budget (a fraction of the objects' bytes), one at a time."""
        cfg = self.cfg
        if not hasattr(self, "s15_kib"):
            self.s15_kib = workload.sizes(cfg.s15_objects)
        total = sum(self.s15_kib) * workload.KIB
        budget_kib = int(total * cfg.s15_fraction) // workload.KIB
        budget = budget_kib * workload.KIB
        results: dict[str, load.WrkResult] = {}
        for name in self.order(r):
            prefix = f"/u/s15-{name}-r{r}/"
            pathfile = self.paths_dir / "s15.txt"
            workload.write_paths(pathfile, prefix, self.s15_kib)
            svc = self._fresh(name, f"s15-r{r}", budget_kib)
            try:
                sampler = (
                    workload.IndexSampler(svc.data_dir / "cache.db")
                    if isinstance(svc, Pullzone)
                    else None
                )
                with sampler or nullcontext():
                    res = load.wrk(
                        svc.base + "/1k.bin",
                        HOST,
                        threads=2,
                        connections=64,
                        duration=cfg.s15_duration,
                        mode="zipf",
                        pathfile=pathfile,
                        seed=15,
                    )
                time.sleep(0.3)  # the origin logs a request when it has sent it
                origin = self.origin.count(prefix)
                held = self._held(svc)
            finally:
                self._discard(svc)
            self._s15_record(name, res, origin, held, sampler, total, budget)
            results[name] = res
        self._s15_equal_answers(results)

    def _s15_equal_answers(self, results: dict[str, load.WrkResult]) -> None:
        """The HIT ratios over the same number of answers: over a fixed time a slower
        server answers fewer requests, more of them while its cache is still filling."""
        row = self.rows["S15 hit @N"]
        per_thread = min(res.marked() for res in results.values())
        threads = len(next(iter(results.values())).marks)
        at = {name: res.hit_ratio_at(per_thread) for name, res in results.items()}
        for name, ratio in at.items():
            row.add(name, None if ratio is None else ratio * 100)
        row.extra.setdefault("answers", []).append(per_thread * threads)
        log(
            f"  S15 HIT ratio over the first {per_thread * threads:,} answers: "
            + ", ".join(f"{n} {100 * (v or 0):.1f} %" for n, v in at.items())
        )

    def _s15_record(
        self,
        name: str,
        res: load.WrkResult,
        origin: int,
        held: dict[str, Any],
        sampler: workload.IndexSampler | None,
        total: int,
        budget: int,
    ) -> None:
        rows = self.rows
        if sampler is not None:
            size = max(sampler.max_stored, held["index_stored_bytes"])
            held.update(
                max_stored_bytes=sampler.max_stored,
                max_used_bytes=sampler.max_used,
                samples=sampler.samples,
            )
        elif name == "nginx":
            size = held["allocated_bytes"]
        else:
            size = held.get("SMA.s0.g_bytes", 0)
        hit = res.hit_ratio
        rows["S15"].add(name, res.rps)
        rows["S15 hit"].add(name, None if hit is None else hit * 100)
        rows["S15 p50"].add(name, res.latency_us["p50"] / 1000)
        rows["S15 p99"].add(name, res.latency_us["p99"] / 1000)
        rows["S15 origin"].add(name, origin)
        rows["S15 cache"].add(name, size / budget * 100)
        for other in ("nginx", "varnish"):
            rows["S15 cache"].reference.add(other)
        rows["S15"].extra.setdefault(name, []).append(
            {
                **res.as_dict(),
                "origin_requests": origin,
                "origin_hit_ratio": round(1 - origin / res.requests, 4) if res.requests else None,
                "objects_bytes": total,
                "cache_budget_bytes": budget,
                "held_at_end": held,
            }
        )
        log(
            f"  S15 {name:8} {res.rps:8,.0f} req/s  HIT {100 * (hit or 0):.1f} % "
            f"(origin {origin:,}: {100 * (1 - origin / max(res.requests, 1)):.1f} % not "
            f"fetched)  p50 {res.latency_us['p50'] / 1000:.2f} ms  p99 "
            f"{res.latency_us['p99'] / 1000:.1f} ms  cache {size / budget:.1%} of "
            f"{budget / 2**30:.2f} GiB  errors {res.error_count}"
        )

    def s16(self, r: int) -> None:
        """S1's HIT (-t1 -c16) during a stream of 1 MiB misses, each URL new, paced to
        `s16_rate` per second; every server new, one at a time."""
        cfg = self.cfg
        for name in self.order(r):
            svc = self._fresh(name, f"s16-r{r}", S16_CACHE_KIB)
            prefix = f"/u/s16-{name}-r{r}/mib/"
            try:
                url = svc.base + "/1k.bin"
                idle = load.wrk(url, HOST, threads=1, connections=16, duration=cfg.duration)
                hits, miss, failure = self._s16_parallel(url, prefix)
                time.sleep(0.3)  # the origin logs a request when it has sent it
                origin = self.origin.count(prefix)
            finally:
                self._discard(svc)
            self._s16_record(name, idle, hits, miss, failure, origin)

    def _s16_parallel(
        self, url: str, prefix: str
    ) -> tuple[load.WrkResult, load.WrkResult | None, str | None]:
        """The HIT wrk on `url` while a paced wrk asks for new 1 MiB objects under
        `prefix` (it starts 1 s before and ends ~1 s after); (hits, misses, failure)."""
        cfg = self.cfg
        out: list[load.WrkResult] = []
        failure: list[str] = []

        def misses() -> None:
            try:
                out.append(
                    load.wrk(
                        url,
                        HOST,
                        threads=1,
                        connections=32,
                        duration=cfg.s16_duration + 2,
                        mode="paced",
                        prefix=prefix,
                        rate=cfg.s16_rate,
                    )
                )
            except Exception as exc:  # reported with the row
                failure.append(repr(exc))

        thread = threading.Thread(target=misses, daemon=True)
        thread.start()
        time.sleep(1.0)
        try:
            hits = load.wrk(url, HOST, threads=1, connections=16, duration=cfg.s16_duration)
        finally:
            thread.join(cfg.s16_duration + 90)
        return hits, (out[0] if out else None), (failure[0] if failure else None)

    def _s16_record(
        self,
        name: str,
        idle: load.WrkResult,
        hits: load.WrkResult,
        miss: load.WrkResult | None,
        failure: str | None,
        origin: int,
    ) -> None:
        rows = self.rows
        lat = hits.latency_us
        rows["S16 p99"].add(name, lat["p99"] / 1000)
        rows["S16 p50"].add(name, lat["p50"] / 1000)
        rows["S16 max"].add(name, lat["max"] / 1000)
        rows["S16 HIT"].add(name, hits.rps)
        rows["S16 idle p99"].add(name, idle.latency_us["p99"] / 1000)
        if miss is not None:
            rows["S16 misses"].add(name, miss.rps)
        rows["S16 p99"].extra.setdefault(name, []).append(
            {
                "hits": hits.as_dict(),
                "idle": idle.as_dict(),
                "misses": miss.as_dict() if miss is not None else None,
                "miss_failure": failure,
                "origin_requests": origin,
                "miss_mb_per_s": round(miss.bytes_per_s / 1e6, 1) if miss else None,
            }
        )
        log(
            f"  S16 {name:8} HIT p50 {lat['p50'] / 1000:.2f} ms  p99 {lat['p99'] / 1000:.2f} ms"
            f"  max {lat['max'] / 1000:.1f} ms  {hits.rps:8,.0f} req/s (alone: p99 "
            f"{idle.latency_us['p99'] / 1000:.2f} ms, {idle.rps:,.0f} req/s)  misses "
            + (
                f"{miss.rps:,.0f}/s ({miss.bytes_per_s / 1e6:,.0f} MB/s, origin {origin:,}, "
                f"errors {miss.error_count})"
                if miss is not None
                else f"failed: {failure}"
            )
        )

    # -- HTTPS: S9, S10, S11, S2tls (pullzone and nginx) -------------------------------

    def _tls_row(self, row_id: str) -> Row:
        row = self.rows[row_id]
        row.notes["varnish"] = NO_TLS_VARNISH
        row.extra.setdefault("tls_handshake", self.tls_sessions)
        return row

    def _server_cpu(self, name: str) -> float:
        svc = self.pz if name == "pullzone" else self.nginx
        assert svc.process is not None
        return procs.cpu_seconds(svc.process.pid)

    def s9(self, r: int) -> None:
        row = self._tls_row("S9")
        for name in self.order(r, TLS_TARGETS):
            base = self.tls_base(name)
            xcache = load.warm(base, TLS_HOST, "/1k.bin", verify=self.tls_verify)
            cpu0 = self._server_cpu(name)
            res = load.wrk(
                base + "/1k.bin", TLS_HOST, threads=2, connections=64, duration=self.cfg.duration
            )
            cpu = self._server_cpu(name) - cpu0
            row.add(name, res.rps)
            row.extra.setdefault(name, []).append(
                {**res.as_dict(), "x_cache": xcache, **_cpu(cpu, res.requests)}
            )
            log(
                f"  S9 {name:8} {res.rps:10,.0f} req/s  p99 "
                f"{res.latency_us['p99'] / 1000:.1f} ms  errors {res.error_count}"
            )

    def s2tls(self, r: int) -> None:
        row = self._tls_row("S2tls")
        for name in self.order(r, TLS_TARGETS):
            base = self.tls_base(name)
            xcache = load.warm(base, TLS_HOST, "/50m.bin", verify=self.tls_verify)
            cpu0 = self._server_cpu(name)
            res = load.wrk(
                base + "/50m.bin", TLS_HOST, threads=2, connections=8, duration=self.cfg.duration
            )
            cpu = self._server_cpu(name) - cpu0
            row.add(name, res.bytes_per_s / 1e9)
            row.extra.setdefault(name, []).append(
                {
                    **res.as_dict(),
                    "x_cache": xcache,
                    "server_cpu_s": round(cpu, 2),
                    "server_cpu_s_per_gb": round(cpu / (res.bytes / 1e9), 3) if res.bytes else None,
                }
            )
            log(
                f"  S2tls {name:8} {res.bytes_per_s / 1e9:7.2f} GB/s  "
                f"({res.requests} responses, errors {res.error_count})"
            )

    def _h2load(
        self,
        row_id: str,
        r: int,
        options: list[str],
        bound_s: float,
        env: dict[str, str] | None = None,
    ) -> None:
        row = self._tls_row(row_id)
        for name in self.order(r, TLS_TARGETS):
            base = self.tls_base(name)
            xcache = load.warm(base, TLS_HOST, "/1k.bin", verify=self.tls_verify)
            resumed0 = self.nginx.resumed_requests()
            cpu0 = self._server_cpu(name)
            try:
                res = load.h2load(
                    base + "/1k.bin",
                    threads=2,
                    clients=64,
                    options=options,
                    bound_s=bound_s,
                    env=env,
                )
            except load.H2loadTimeout as exc:
                log(f"  {row_id} {name:8} no result: {exc}")
                row.extra.setdefault(name, []).append({"timed_out": str(exc)})
                continue
            cpu = self._server_cpu(name) - cpu0
            bad = res.failed + res.errored + (res.succeeded - res.status_2xx)
            # The value: 2xx answers per second over the whole run. Requests h2load gave up
            # on (a connection idle for -N, see s10) count against it, and are in the JSON.
            row.add(name, res.ok_rps if res.succeeded == res.status_2xx else None)
            extra = {**res.as_dict(), "x_cache": xcache, **_cpu(cpu, res.succeeded)}
            if name == "nginx":
                extra["nginx_resumed_requests"] = self.nginx.resumed_requests() - resumed0
            row.extra.setdefault(name, []).append(extra)
            log(
                f"  {row_id} {name:8} {res.ok_rps:10,.0f} req/s  ({res.succeeded} succeeded, "
                f"{bad} not 2xx/failed; {res.tls.get('Application protocol', '?')}"
                + (
                    f", connect {res.time_to_connect_mean_ms:.1f} ms mean"
                    if res.time_to_connect_mean_ms is not None
                    else ""
                )
                + f", server CPU {extra['server_cpu_us_per_request']:.0f} µs/request"
                + (
                    f", nginx saw {extra['nginx_resumed_requests']} resumed"
                    if "nginx_resumed_requests" in extra
                    else ""
                )
                + ")"
            )

    def s10(self, r: int) -> None:
        """`-n` (20,000 x duration requests), not `-D`: against pullzone, about one h2load
        run in four has a connection that stops progressing, and with `-D` h2load then
        never ends. `-N 4s` drops a connection idle for 4 s (its requests count as
        errored); the run is bounded anyway."""
        n = 20_000 * self.cfg.duration
        options = ["-m10", "-n", str(n), "-N", "4s"]
        self._h2load("S10", r, options, bound_s=30 + n / 1500)

    def s11(self, r: int) -> None:
        """One request per connection, `Connection: close`: each of the 64 clients opens a
        new connection after every answer, with a full handshake. h2load would resume the
        previous connection's session (it keeps the SSL object); pzbench/noresume.c, as
        LD_PRELOAD, drops it first. nginx's log of resumed requests must stay empty.
        `-n` (1,000 x duration connections) rather than `-D`: h2load 1.52's `-D` never
        ends once the server closes connections; the run is bounded anyway."""
        if self.noresume is None:
            self.rows["S11"].notes.update(pullzone="n/a (no C compiler)", nginx="—")
            return
        n = 1000 * self.cfg.duration
        env = {**os.environ, "LD_PRELOAD": str(self.noresume)}
        options = ["--h1", "-m1", "-n", str(n), "-N", "4s", "-H", "Connection: close"]
        self._h2load("S11", r, options, bound_s=60 + 10 * self.cfg.duration, env=env)

    # -- the big index: S7 and S4 at 1M ---------------------------------------------

    def big_index(self) -> None:
        """After the rounds, with every server stopped: grow pullzone's index to
        `objects` (zone "big", from the one object cached at setup), restart it, measure."""
        cfg = self.cfg
        big = self.pz
        zone = self.zones["big"]
        host = f"{zone['alias']}.localhost"
        log(f"big index: {cfg.objects:,} objects (shortcut: rows copied into cache.db)")
        try:
            use_query = zone.get("cache", {}).get("querystring", "Y") == "Y"
            info = fill.fill(big.data_dir, int(zone["id"]), use_query, cfg.objects, cfg.linked)
            log(f"  filled: {info}")
            big.start()
            log(f"  pullzone restarted with {cfg.objects:,} objects in {big.started_in:.1f} s")
            extra: dict[str, Any] = {"fill": info, "startup_s": round(big.started_in, 2)}
            time.sleep(0.5)
            workers = big.worker_pids()
            idle = max(procs.rss_bytes(p) for p in workers)
            extra["worker_rss_idle_mb"] = round(idle / 1e6, 1)
            assert big.process is not None
            extra["supervisor_rss_mb"] = round(procs.rss_bytes(big.process.pid) / 1e6, 1)
            if cfg.wants("S7"):
                self.rows["S7 idle"].add("pullzone", idle / 1e6)
                self.rows["S7 idle"].notes.update(nginx="—", varnish="—")
                sample = f"/big/{cfg.linked - 1}.bin"
                status, xc, _ = load.get(big.base, host, sample)
                if status != 200 or not xc.upper().startswith("HIT"):
                    raise RuntimeError(f"{sample} from the filled index: {status} {xc}")
                load.warm(big.base, host, "/ten/0.bin")  # the sentinel: 10 KiB, cached
                pathfile = self.paths_dir / "big.txt"
                pathfile.write_text("".join(f"{fill.big_path(i)}\n" for i in range(cfg.linked)))
                # Every one of the `linked` objects requested exactly once (a HIT each,
                # spread over the workers), as S8's cold pass does.
                res = load.wrk(
                    big.base + "/ten/0.bin",
                    host,
                    threads=2,
                    connections=64,
                    duration=120,
                    mode="cold",
                    pathfile=pathfile,
                    max_bytes=TEN // 2,
                )
                rss = {p: procs.rss_bytes(p) for p in big.worker_pids()}
                worst = max(rss.values())
                self.rows["S7"].add("pullzone", worst / 1e6)
                extra.update(
                    worker_rss_after_mb={str(p): round(v / 1e6, 1) for p, v in rss.items()},
                    hit_pass={
                        "distinct_objects": cfg.linked,
                        "first_touch_hit_req_s": round(res.cold_rps or 0),
                        **res.as_dict(),
                    },
                    note="RSS grows with the entries each worker keeps in its bounded "
                    "in-memory cache (pullzone.edge.entry.MemoryCache); the objects are "
                    "spread over the workers by the kernel, about evenly.",
                )
                log(
                    f"  S7 worker RSS idle {idle / 1e6:.0f} MB; after one HIT on each of "
                    f"{cfg.linked:,} objects ({res.cold_rps or 0:,.0f} req/s, first touch): "
                    f"max {worst / 1e6:.0f} MB"
                )
                self.rows["S7"].extra = extra
                self.rows["S7"].notes.update(nginx="—", varnish="—")
            if cfg.wants("S4"):
                # On an idle server, as S4 at 1k: let S7's load settle first.
                time.sleep(2.5 if cfg.wants("S7") and not cfg.quick else 0)
                row = self.rows[self.big_row]
                row.notes.update(nginx=NGINX_NO_PURGE, varnish="—")
                if self.purge_api:
                    times = self._purge_series(big, int(zone["id"]), cfg.purge_reps)
                    if times is not None:
                        row.add("pullzone", p50(times))
                        row.extra = {"pullzone": _lat(times), **extra}
                        log(
                            f"  S4 pullzone whole-zone purge, {cfg.objects:,} objects: "
                            f"p50 {p50(times):.2f} ms max {max(times):.2f} ms"
                        )
                if not self.purge_api:
                    row.notes["pullzone"] = NO_PURGE_API
        finally:
            big.stop()

    def s14(self, r: int) -> None:
        """A 100 KiB text HIT asked with Accept-Encoding: br, in a zone with compression
        off (identity) and in one with it on (the stored brotli variant), in alternating
        order; the node's compression counter must not move during the runs."""
        cases = [("S14 off", HOST, None), ("S14", GZ_HOST, "br")]
        if r % 2:
            cases.reverse()
        for row_id, host, coding in cases:
            row = self.rows[row_id]
            for other in ("nginx", "varnish"):
                row.notes[other] = PULLZONE_ONLY_NOTE
            seen = [_text_hit(self.pz.base, host) for _ in range(3)]
            before = _compressions(self.pz)
            res = load.wrk(
                self.pz.base + "/100k.txt",
                host,
                threads=2,
                connections=64,
                duration=self.cfg.duration,
                headers=("Accept-Encoding: br",),
            )
            during = _compressions(self.pz) - before
            row.add("pullzone", res.rps)
            extra = {**res.as_dict(), "warm": seen, "compressions_during_run": during}
            row.extra.setdefault("pullzone", []).append(extra)
            last = seen[-1]
            if last[0] != "HIT" or last[1] != coding:
                raise RuntimeError(f"{row_id}: X-Cache, Content-Encoding {last}, not HIT, {coding}")
            log(
                f"  {row_id:7} pullzone {res.rps:10,.0f} req/s  ({res.bytes_per_s / 1e6:.0f} MB/s,"
                f" Content-Encoding {coding or 'none'}, compressions during the run {during},"
                f" errors {res.error_count})"
            )
        self.s14_compressions = _compressions(self.pz)

    # -- driver -----------------------------------------------------------------------

    def run(self) -> None:
        cfg = self.cfg
        self.start()
        steps = [
            ("S1", self.s1),
            ("S6", self.s6),
            ("S13", self.s13),
            ("S2", self.s2),
            ("S9", self.s9),
            ("S10", self.s10),
            ("S11", self.s11),
            ("S2TLS", self.s2tls),
            ("S3", self.s3),
            ("S12", self.s12),
            ("S8", self.s8),
            ("S4", self.s4_small),
            ("S5", self.s5),
            ("S14", self.s14),
            ("S16", self.s16),
            ("S15", self.s15),
        ]
        for r in range(cfg.rounds):
            running = tuple(t for t in TARGETS if t in self.services)
            log(f"round {r + 1}/{cfg.rounds} (order: {', '.join(self.order(r, running))})")
            for scenario, step in steps:
                if cfg.wants(scenario):
                    t0 = time.monotonic()
                    step(r)
                    self.timings[f"r{r + 1} {scenario}"] = round(time.monotonic() - t0, 1)
        # The pullzone-only part needs none of the other servers: stop them first.
        with ThreadPoolExecutor(3) as pool:
            for future in [pool.submit(s.stop) for s in (self.nginx, self.varnish, self.pz)]:
                future.result()
        if cfg.wants("S4") or cfg.wants("S7"):
            t0 = time.monotonic()
            self.big_index()
            self.timings["big index (S4, S7)"] = round(time.monotonic() - t0, 1)
        self.judge()

    def judge(self) -> None:
        rows = self.rows
        s1 = rows["S1"]
        if s1.values.get("pullzone"):
            rn, rv = s1.ratio("nginx"), s1.ratio("varnish")
            if rn is not None and rv is not None:
                s1.met = rn >= 0.75 and rv >= 1.0
                s1.goal_detail = f"{rn:.3f}× and {rv:.3f}×"
        s2 = rows["S2"]
        if (rn := s2.ratio("nginx")) is not None:
            s2.met = rn >= 0.9
            s2.goal_detail = f"{rn:.3f}×"
        s3 = rows["S3"]
        if s3.values.get("pullzone"):
            s3.met = all(v == 1 for v in s3.values["pullzone"])
            s3.goal_detail = "every round" if len(s3.values["pullzone"]) > 1 else ""
        for rid in ("S4 1k", self.big_row):
            if (m := rows[rid].median("pullzone")) is not None:
                rows[rid].met = m < 5
        if (m := rows["S5"].median("pullzone")) is not None:
            rows["S5"].met = m < 100
        s6 = rows["S6"]
        base, with_purges = s1.median("pullzone"), s6.median("pullzone")
        if base and with_purges:
            s6.met = with_purges >= 0.95 * base
            s6.goal_detail = f"{with_purges / base:.2f}× pullzone S1"
        elif with_purges:
            s6.goal_detail = "S1 not run"
        s13 = rows["S13"]
        if base and (signed := s13.median("pullzone")):
            s13.met = signed >= 0.85 * base
            s13.goal_detail = f"{signed / base:.2f}× pullzone S1"
        for rid in ("S7 idle", "S7"):
            if (m := rows[rid].median("pullzone")) is not None:
                rows[rid].met = m < 256
        off, on = rows["S14 off"].median("pullzone"), rows["S14"].median("pullzone")
        if off and on:
            # Every run's warm-up compresses once; the counter is the node's, over the rounds.
            once = getattr(self, "s14_compressions", None) == 1
            rows["S14"].met = on >= 0.9 * off and once
            made = getattr(self, "s14_compressions", "?")
            rows["S14"].goal_detail = f"{on / off:.2f}×, {made} compression(s)"
        if (rn := rows["S12"].ratio("nginx")) is not None:
            rows["S12"].met = rn <= 1.0
            rows["S12"].goal_detail = f"{rn:.2f}× nginx's time"
        for rid, goal in (("S9", 0.9), ("S10", 0.5), ("S11", 0.8), ("S2tls", 0.7)):
            if (rn := rows[rid].ratio("nginx")) is not None:
                rows[rid].met = rn >= goal
                rows[rid].goal_detail = f"{rn:.3f}×"
        self._judge_s15()
        s16 = rows["S16 p99"].values.get("pullzone")
        if s16:
            rows["S16 p99"].met = max(s16) <= S16_GOAL_MS
            rows["S16 p99"].goal_detail = f"worst round {max(s16):.2f} ms"

    def _judge_s15(self) -> None:
        rows = self.rows
        rn = rows["S15"].ratio("nginx")
        hit_pz, hit_ng = rows["S15 hit"].median("pullzone"), rows["S15 hit"].median("nginx")
        p99_pz, p99_ng = rows["S15 p99"].median("pullzone"), rows["S15 p99"].median("nginx")
        if rn is not None and None not in (hit_pz, hit_ng, p99_pz, p99_ng):
            assert hit_pz is not None and hit_ng is not None
            assert p99_pz is not None and p99_ng is not None
            rows["S15"].met = rn >= 1.0 and hit_pz >= hit_ng and p99_pz <= p99_ng
            rows["S15"].goal_detail = (
                f"{rn:.2f}×; HIT {hit_pz:.1f} vs {hit_ng:.1f} %; p99 {p99_pz:.1f} vs "
                f"{p99_ng:.1f} ms"
            )
        held = rows["S15 cache"].values.get("pullzone")
        if held:
            rows["S15 cache"].met = max(held) <= 101.0
            rows["S15 cache"].goal_detail = f"largest {max(held):.1f} %"


def _text_hit(base: str, host: str) -> tuple[str, str | None]:
    """S14: GET /100k.txt with Accept-Encoding: br; (X-Cache, Content-Encoding)."""
    r = httpx.get(base + "/100k.txt", headers={"Host": host, "Accept-Encoding": "br"}, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"S14 {host}: {r.status_code}")
    return r.headers.get("x-cache", ""), r.headers.get("content-encoding")


def _compressions(pz: Pullzone) -> int:
    """The node's pullzone_compressions_total (every coding), once every worker's snapshot
    is newer than now (they are written once a second)."""
    assert pz.api is not None
    time.sleep(1.2)  # the workers' stats snapshots are written once a second
    text = pz.api.get(pz.api_url.removesuffix("/v2") + "/metrics").text
    return sum(
        int(float(line.rpartition(" ")[2]))
        for line in text.splitlines()
        if line.startswith("pullzone_compressions_total")
    )


def _cpu(seconds: float, requests: int) -> dict[str, Any]:
    """The server's CPU time over a run (all its processes), and per request."""
    return {
        "server_cpu_s": round(seconds, 2),
        "server_cpu_us_per_request": round(seconds / requests * 1e6, 1) if requests else 0.0,
    }


def _lat(times: list[float]) -> dict[str, Any]:
    return {
        "n": len(times),
        "p50_ms": round(p50(times), 3),
        "p90_ms": round(pct(times, 0.9), 3),
        "max_ms": round(max(times), 3),
        "all_ms": [round(t, 2) for t in times],
    }


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(
        description="pullzone vs nginx proxy_cache vs Varnish (see bench/README.md)"
    )
    p.add_argument("--quick", action="store_true", help="one round, short runs (< 1 minute)")
    p.add_argument(
        "--only",
        default=",".join(DEFAULT_SCENARIOS),
        help="comma-separated scenarios, e.g. S1,S2 (default: all but S15 and S16, which "
        "run only when named)",
    )
    p.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--duration", type=int, help="seconds per wrk run (default 5; 2 with --quick)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="pullzone --workers = nginx worker_processes (default 2)",
    )
    p.add_argument(
        "--objects", type=int, help="index size for S4/S7 (default 1,000,000; 100,000 with --quick)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=BENCH / "results" / "latest.json",
        help="results file (the chart goes next to it, .png)",
    )
    p.add_argument(
        "--s15-duration",
        type=int,
        help="seconds of S15's wrk run per server (default 300; 20 with --quick)",
    )
    p.add_argument(
        "--s16-duration",
        type=int,
        help="seconds of S16's parallel wrk runs per server (default 60; 10 with --quick)",
    )
    p.add_argument(
        "--s16-rate",
        type=float,
        default=1000.0,
        help="1 MiB misses per second S16 asks for (default 1000)",
    )
    p.add_argument("--no-install", action="store_true", help="never run apt-get")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, configs)")
    args = p.parse_args(argv)
    only = tuple(s.strip().upper() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    quick = args.quick
    objects = args.objects or (100_000 if quick else 1_000_000)
    cfg = Config(
        quick=quick,
        only=only,
        rounds=args.rounds or (1 if quick else 3),
        duration=args.duration or (2 if quick else 5),
        workers=args.workers,
        objects=objects,
        linked=min(objects, 20_000 if quick else 200_000),
        s8_objects=2_000 if quick else 10_000,
        burst_clients=500,
        purge_reps=15 if quick else 40,
        list_reps=3 if quick else 8,
        s15_duration=args.s15_duration or (20 if quick else 300),
        s16_duration=args.s16_duration or (10 if quick else 60),
        s16_rate=args.s16_rate,
    )
    return cfg, args


def main(argv: list[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    atexit.register(procs.stop_all)

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # Ctrl-C: KeyboardInterrupt, even when started from a shell that ignores SIGINT in
    # background jobs. The servers are in process groups of their own, so the bench
    # stops them itself (finally: below, and atexit).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    tools: tuple[str, ...] = ("wrk", "nginx")
    if cfg.wants_varnish():
        tools += ("varnishd",)
    if cfg.wants("S10") or cfg.wants("S11"):
        tools += ("h2load",)
    procs.ensure_tools(install=not args.no_install, tools=tools)
    started = time.monotonic()
    load_before = os.getloadavg()
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        log(
            f"bench: note: the machine is busy (load average {load_before[0]:.1f} on "
            f"{os.cpu_count()} CPUs); the numbers will be noisier"
        )
    tmp = Path(tempfile.mkdtemp(prefix="pullzone-bench-"))
    bench = Bench(cfg, tmp)
    try:
        bench.run()
    except KeyboardInterrupt:
        log("\nbench: interrupted; stopping servers")
        return 130
    except (RuntimeError, OSError) as exc:
        log(f"\nbench: failed: {exc}")
        return 1
    finally:
        procs.stop_all()
        if args.keep_tmp:
            log(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - started
    rows = bench.row_list()
    machine, vers = procs.machine(), procs.versions()
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": cfg.quick,
        "scenarios": list(cfg.only),
        "rounds": cfg.rounds,
        "wrk_duration_s": cfg.duration,
        "workers": cfg.workers,
        "index_objects": cfg.objects,
        "elapsed_s": round(elapsed, 1),
        "timings_s": bench.timings,
        "load_average_1m": {
            "before": round(load_before[0], 2),
            "after": round(os.getloadavg()[0], 2),
        },
        "pullzone_source": procs.source_state(),
        "machine": machine,
        "versions": vers,
        "notes": {
            "value": "median over rounds; ±x% = half the min–max range in % of the median",
            "ratios": "pullzone median / other median (for times: >1 means pullzone slower)",
            "reference": "(ref): not the same operation, shown for orientation only",
        },
    }
    report.write_json(args.out, meta, rows)
    png = args.out.with_suffix(".png")
    m = machine
    title = (
        f"pullzone {vers['pullzone']} vs nginx {vers['nginx']} vs "
        f"Varnish {vers['varnish']} — {m['nproc']} × {m['cpu']}, "
        f"{cfg.rounds} round(s), median with min–max"
    )
    charted = report.chart(png, rows, title)
    log("")
    log(report.table(rows))
    log("")
    log(
        f"{cfg.rounds} round(s), wrk runs of {cfg.duration} s, {cfg.workers} workers each; "
        f"{m['nproc']} × {m['cpu']}; took {elapsed:.0f} s"
    )
    log(
        f"wrote {args.out}"
        + (f" and {png}" if charted else " (no chart: pip install -e '.[bench]' for matplotlib)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
