"""Load generators: wrk (throughput), a 500-connection burst (S3), and small async
helpers to warm caches and send Varnish PURGE requests."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from pzbench.procs import CONFIGS, spawn, stop

WRK_SCRIPT = CONFIGS / "wrk.lua"


@dataclass
class WrkResult:
    duration_s: float
    requests: int
    bytes: int
    errors: dict[str, int]
    latency_us: dict[str, float]
    cold: list[dict[str, int]] = field(default_factory=list)
    hits: int = 0  # "zipf" mode: answers with X-Cache HIT…
    counted: int = 0  # …of these (every answer the script saw)
    mark: int = 0  # "zipf" mode: each thread noted its HITs so far every `mark` answers
    marks: list[list[int]] = field(default_factory=list)  # per thread

    @property
    def hit_ratio(self) -> float | None:
        """X-Cache HITs per answer ("zipf" mode; None in the others)."""
        return self.hits / self.counted if self.counted else None

    def marked(self) -> int:
        """Answers per thread for which every thread has a mark (0 without marks)."""
        return min((len(m) for m in self.marks), default=0) * self.mark

    def hit_ratio_at(self, per_thread: int) -> float | None:
        """X-Cache HITs per answer over each thread's first `per_thread` answers (a multiple
        of `mark`, at most `marked()`)."""
        k = per_thread // self.mark if self.mark else 0
        if k <= 0 or k > min((len(m) for m in self.marks), default=0):
            return None
        return sum(m[k - 1] for m in self.marks) / (k * self.mark * len(self.marks))

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def cold_rps(self) -> float | None:
        """Cold pass: every path once, over the slowest thread's time to get its share."""
        if not self.cold or any(c["elapsed_us"] <= 0 for c in self.cold):
            return None
        total = sum(c["share"] for c in self.cold)
        return total / (max(c["elapsed_us"] for c in self.cold) / 1e6)

    def as_dict(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "bytes": self.bytes,
            "errors": self.errors,
            "latency_us": self.latency_us,
            **({"cold": self.cold} if self.cold else {}),
            **({"x_cache": {"hit": self.hits, "of": self.counted}} if self.counted else {}),
        }


def wrk(
    url: str,
    host: str,
    *,
    threads: int,
    connections: int,
    duration: int,
    mode: str = "static",
    pathfile: Path | None = None,
    timeout_s: int = 10,
    min_bytes: int = 0,
    max_bytes: int = 1 << 60,
    headers: tuple[str, ...] = (),
    seed: int = 1,
    prefix: str = "",
    rate: float = 0.0,
) -> WrkResult:
    """Run wrk against `url` with a `Host` header; `mode` as in configs/wrk.lua.

    "zipf" draws from `pathfile` (seeded with `seed`); "paced" asks for new paths under
    `prefix` at `rate` requests per second in all (split over the threads).
    In "cold" mode wrk is stopped (SIGINT, which makes it report) as soon as every
    thread has had its share of paths answered once; `duration` is then only a bound.
    """
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={timeout_s}s",
        "-H",
        f"Host: {host}",
        *[arg for header in headers for arg in ("-H", header)],
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        mode,
    ]
    if mode in ("cycle", "cold"):
        assert pathfile is not None
        args += [str(pathfile), str(threads), str(min_bytes), str(max_bytes)]
    elif mode == "zipf":
        assert pathfile is not None
        args += [str(pathfile), str(seed)]
    elif mode == "paced":
        assert prefix and rate > 0
        args += [prefix, str(rate / threads), str(threads)]
    process = spawn(args, stdout=subprocess.PIPE)
    assert process.stdout is not None
    lines: list[str] = []
    done_threads = 0
    deadline = time.monotonic() + duration + 60
    try:
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            if line == "COLD_DONE":
                done_threads += 1
                if done_threads == threads:
                    process.send_signal(signal.SIGINT)
            if time.monotonic() > deadline:
                break
        process.wait(max(1.0, deadline - time.monotonic()))
    finally:
        stop(process, sig=signal.SIGINT, timeout=10)
    for line in lines:
        if line.startswith("WRKJSON "):
            data = json.loads(line.removeprefix("WRKJSON "))
            return WrkResult(
                duration_s=data["duration_us"] / 1e6,
                requests=data["requests"],
                bytes=data["bytes"],
                errors=data["errors"],
                latency_us=data["latency_us"],
                cold=data["cold"] if mode == "cold" else [],
                hits=data["xcache"]["hit"],
                counted=data["xcache"]["counted"],
                mark=data["xcache"]["mark"],
                marks=data["xcache"]["marks"],
            )
    raise RuntimeError("wrk gave no result:\n" + "\n".join(lines[-20:]))


def get(
    base: str, host: str, path: str, method: str = "GET", verify: ssl.SSLContext | bool = True
) -> tuple[int, str, int]:
    """(status, X-Cache, body length) of one request (`verify`: for https bases)."""
    r = httpx.request(method, base + path, headers={"Host": host}, timeout=60, verify=verify)
    return r.status_code, r.headers.get("x-cache", ""), len(r.content)


def warm(base: str, host: str, path: str, verify: ssl.SSLContext | bool = True) -> str:
    """Fetch until a HIT (at most 5 tries); returns the last X-Cache value."""
    xcache = ""
    for _ in range(5):
        status, xcache, _size = get(base, host, path, verify=verify)
        if status != 200:
            raise RuntimeError(f"{base}{path} (Host {host}) answered {status}")
        if xcache.upper().startswith("HIT"):
            return xcache
    return xcache


def fetch_all(base: str, host: str, paths: list[str], concurrency: int = 32) -> dict[int, int]:
    """GET every path once (bodies read and dropped); returns counts by status."""

    async def main() -> dict[int, int]:
        statuses: dict[int, int] = {}
        queue = iter(paths)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as session:

            async def one_worker() -> None:
                for path in queue:
                    async with session.get(base + path, headers={"Host": host}) as r:
                        await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1

            await asyncio.gather(*(one_worker() for _ in range(concurrency)))
        return statuses

    return asyncio.run(main())


@dataclass
class BurstResult:
    clients: int
    statuses: dict[int, int]
    xcache: dict[str, int]
    body_sizes: set[int]
    wall_ms: float
    latency_ms_p50: float
    latency_ms_max: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "x_cache": self.xcache,
            "body_sizes": sorted(self.body_sizes),
            "wall_ms": round(self.wall_ms, 1),
            "latency_ms_p50": round(self.latency_ms_p50, 1),
            "latency_ms_max": round(self.latency_ms_max, 1),
        }


def burst(port: int, host: str, path: str, clients: int = 500, timeout: float = 60) -> BurstResult:
    """`clients` connections opened first, then one GET each sent at once, for one object."""

    async def main() -> BurstResult:
        sem = asyncio.Semaphore(64)  # connect in waves: listen backlogs are finite

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            async with sem:
                return await asyncio.open_connection("127.0.0.1", port)

        conns = await asyncio.gather(*(connect() for _ in range(clients)))
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            "User-Agent: pullzone-bench\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        for _, writer in conns:
            writer.write(request)

        async def read(reader: asyncio.StreamReader) -> tuple[int, str, int, float]:
            data = await reader.read(-1)
            done = time.perf_counter()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            try:
                status = int(lines[0].split()[1])
            except (IndexError, ValueError):
                status = 0
            xcache = ""
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "x-cache":
                    xcache = value.strip()
            return status, xcache, len(body), (done - t0) * 1000

        results = await asyncio.wait_for(asyncio.gather(*(read(r) for r, _ in conns)), timeout)
        wall = (time.perf_counter() - t0) * 1000
        for _, writer in conns:
            writer.close()
        statuses: dict[int, int] = {}
        xcache: dict[str, int] = {}
        for status, xc, _size, _ms in results:
            statuses[status] = statuses.get(status, 0) + 1
            xcache[xc or "-"] = xcache.get(xc or "-", 0) + 1
        latencies = sorted(r[3] for r in results)
        return BurstResult(
            clients=clients,
            statuses=statuses,
            xcache=xcache,
            body_sizes={r[2] for r in results},
            wall_ms=wall,
            latency_ms_p50=latencies[len(latencies) // 2],
            latency_ms_max=latencies[-1],
        )

    return asyncio.run(main())


def pipelined(port: int, host: str, method: str, paths: list[str], timeout: float = 60) -> float:
    """Send one request per path on one keep-alive connection, pipelined; wait for every
    answer; returns the total time in ms. For Varnish PURGE/BAN reference numbers."""

    async def main() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = b"".join(f"{method} {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths)
        t0 = time.perf_counter()
        writer.write(payload)
        for _ in paths:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 404")):
                raise RuntimeError(f"{method} answered {head[:40]!r}")
            await reader.readexactly(length)
        elapsed = (time.perf_counter() - t0) * 1000
        writer.close()
        return elapsed

    return asyncio.run(asyncio.wait_for(main(), timeout))


class H2loadTimeout(RuntimeError):
    """h2load did not end within its bound (a connection that never progresses)."""


@dataclass
class H2loadResult:
    args: list[str]
    seconds: float
    rps: float
    requests_done: int
    succeeded: int
    failed: int
    errored: int
    status_2xx: int
    tls: dict[str, str]
    time_to_connect_mean_ms: float | None

    @property
    def ok_rps(self) -> float:
        """Successful answers per second of the whole run (connections included)."""
        return self.succeeded / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": " ".join(self.args),
            "seconds": self.seconds,
            "req_per_s": round(self.rps, 1),
            "done": self.requests_done,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "errored": self.errored,
            "status_2xx": self.status_2xx,
            "tls": self.tls,
            "time_to_connect_mean_ms": self.time_to_connect_mean_ms,
        }


_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def h2load(
    url: str,
    *,
    threads: int,
    clients: int,
    options: list[str],
    bound_s: float,
    env: dict[str, str] | None = None,
) -> H2loadResult:
    """Run h2load (nghttp2) against `url`; `options` picks the rest (-m, -n or -D, --h1,
    -H). The run is stopped after `bound_s` seconds whatever `options` ask for."""
    args = ["h2load", f"-t{threads}", f"-c{clients}", *options, url]
    process = spawn(args, stdout=subprocess.PIPE, env=env)
    try:
        out, _ = process.communicate(timeout=bound_s)
    except subprocess.TimeoutExpired:
        stop(process, sig=signal.SIGINT, timeout=5)
        raise H2loadTimeout(
            f"h2load did not finish within {bound_s:.0f} s: {' '.join(args)}"
        ) from None
    finally:
        stop(process, sig=signal.SIGINT, timeout=5)
    text = out.decode(errors="replace")
    done = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    reqs = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored",
        text,
    )
    codes = re.search(r"status codes: (\d+) 2xx", text)
    if not (done and reqs and codes):
        raise RuntimeError("h2load gave no result:\n" + text[-2000:])
    tls = {}
    for key in ("TLS Protocol", "Cipher", "Server Temp Key", "Application protocol"):
        m = re.search(rf"^{key}: (.+)$", text, re.M)
        if m:
            tls[key] = m.group(1).strip()
    connect = re.search(r"^time for connect:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", text, re.M)
    return H2loadResult(
        args=args,
        seconds=float(done.group(1)) / (1000 if done.group(2) == "ms" else 1),
        rps=float(done.group(3)),
        requests_done=int(reqs.group(3)),
        succeeded=int(reqs.group(4)),
        failed=int(reqs.group(5)),
        errored=int(reqs.group(6)),
        status_2xx=int(codes.group(1)),
        tls=tls,
        time_to_connect_mean_ms=(
            round(float(connect.group(1)) * _MS[connect.group(2)], 3) if connect else None
        ),
    )


def tls_session(port: int, name: str, cafile: Path) -> dict[str, str]:
    """What one handshake to 127.0.0.1:`port` with SNI `name` negotiates (openssl s_client):
    protocol, cipher, key exchange group, ALPN, verification."""
    r = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            name,
            "-CAfile",
            str(cafile),
            "-alpn",
            "h2,http/1.1",
            "-brief",
        ],
        input=b"",
        capture_output=True,
        timeout=15,
    )
    text = (r.stdout + r.stderr).decode(errors="replace")
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.strip() in (
            "Protocol version",
            "Ciphersuite",
            "Negotiated TLS1.3 group",
            "Server Temp Key",
            "ALPN protocol",
            "Verification",
            "Peer signature type",
        ):
            out[key.strip()] = value.strip()
    return out


def range_ms(
    port: int, host: str, path: str, first: int, count: int, timeout: float = 120
) -> tuple[int, float]:
    """One GET of bytes [first, first + count) on a connection opened beforehand: its
    status and the milliseconds from sending it to the last of those bytes (no client
    library in the measure: at a few milliseconds, one would be most of it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nRange: bytes={first}-{first + count - 1}\r\n"
            "Connection: close\r\nUser-Agent: pullzone-bench\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        sock.sendall(request)
        data = b""
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and len(body) >= count:
                break
            more = sock.recv(65536)
            if not more:
                break
            data += more
        ms = (time.perf_counter() - t0) * 1000
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return (status if len(body) >= count else 0), ms
