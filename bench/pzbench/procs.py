"""The servers under test and the shared origin, each a child process of the bench.

Every child runs in a process group of its own (so Ctrl-C in the terminal reaches only the
bench, which then stops them in order) and is registered here; `stop_all()` runs on any
exit: normal end, error, Ctrl-C or SIGTERM. Nothing listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
API_KEY = "bench-admin-key-0123456789abcdef"

_children: list[subprocess.Popen[Any]] = []


class PurgeUnavailable(Exception):
    """The purge route answered 404: the API under test does not have it (yet)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(
    args: list[str],
    *,
    log: Path | None = None,
    stdout: int | IO[Any] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[Any]:
    out: int | IO[Any] | None = stdout
    if log is not None:
        out = open(log, "ab")  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else None,
        env=env,
        start_new_session=True,
    )
    _children.append(process)
    return process


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Ask the group leader to stop, then kill whatever is left of its group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Workers of a leader that is gone (nginx workers, pullzone edge workers).
    deadline = time.monotonic() + 5
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    if process in _children:
        _children.remove(process)


def stop_all() -> None:
    for process in reversed(list(_children)):
        try:
            stop(process, timeout=10)
        except Exception as exc:  # keep stopping the others
            print(f"bench: could not stop pid {process.pid}: {exc}", file=sys.stderr)


def wait_port(port: int, process: subprocess.Popen[Any], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def render(template: str, out: Path, **values: object) -> Path:
    text = (CONFIGS / template).read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", str(value))
    leftover = re.findall(r"\{\{[A-Z_]+\}\}", text)
    if leftover:
        raise ValueError(f"{template}: no value for {leftover}")
    out.write_text(text)
    return out


def _nginx_user() -> str:
    # As root, nginx workers would switch to an unprivileged user that cannot enter our
    # 0700 temp dirs; the bench's nginx runs as whoever starts the bench.
    return "user root;" if os.geteuid() == 0 else ""


class Service:
    name = "?"
    port = 0
    dir: Path  # its working directory (configs, logs, cache)
    process: subprocess.Popen[Any] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


class Origin(Service):
    """nginx serving static files; counts requests per URI prefix from its access log."""

    name = "origin"

    def __init__(self, workdir: Path, root: Path, slow_rate: str, expires: str = "1h") -> None:
        """`expires`: nginx's `expires` for every answer (1h: Cache-Control max-age=3600)."""
        self.dir = workdir
        self.root = root
        self.slow_rate = slow_rate
        self.expires = expires
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.dir / "access.log"

    def start(self) -> Origin:
        conf = render(
            "origin-nginx.conf",
            self.dir / "nginx.conf",
            USER=_nginx_user(),
            DIR=self.dir,
            PORT=self.port,
            ROOT=self.root,
            SLOW_RATE=self.slow_rate,
            EXPIRES=self.expires,
        )
        self.process = _start_nginx(self.dir, conf)
        wait_port(self.port, self.process, "origin nginx")
        return self

    def count(self, prefix: str) -> int:
        """Requests the origin has answered whose URI starts with `prefix`."""
        if not self.log.exists():
            return 0
        with open(self.log, "rb") as f:
            p = prefix.encode()
            return sum(1 for line in f if line.startswith(p))


def _start_nginx(prefix: Path, conf: Path) -> subprocess.Popen[Any]:
    for sub in ("client_body", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (prefix / sub).mkdir(exist_ok=True)
    args = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    check = subprocess.run([*args, "-t", "-q"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed for {conf}:\n{check.stderr}")
    return spawn([*args, "-g", "daemon off;"], log=prefix / "stdout.log")


class Nginx(Service):
    name = "nginx"

    def __init__(self, workdir: Path, origin_port: int, workers: int, max_size: str = "8g") -> None:
        """`max_size`: `proxy_cache_path … max_size=` (8g; S15 gives its byte budget)."""
        self.dir = workdir
        self.max_size = max_size
        self.dir.mkdir(parents=True, exist_ok=True)
        self.origin_port = origin_port
        self.workers = workers
        self.port = free_port()
        self.tls_port = 0  # set by enable_tls()
        self._tls: tuple[Path, Path] | None = None

    def enable_tls(self, cert: Path, key: Path) -> None:
        """Before start(): also listen on `tls_port` with `ssl http2` (configs/nginx-tls.conf)."""
        self.tls_port = free_port()
        self._tls = (cert, key)

    def resumed_requests(self) -> int:
        """Requests on a resumed TLS session so far (configs/nginx-tls.conf logs only those)."""
        log = self.dir / "tls-resumed.log"
        return len(log.read_bytes().splitlines()) if log.exists() else 0

    def start(self) -> Nginx:
        tls_server = ""
        if self._tls is not None:
            cert, key = self._tls
            text = (CONFIGS / "nginx-tls.conf").read_text()
            values = {"TLS_PORT": self.tls_port, "CERT": cert, "KEY": key, "DIR": self.dir}
            for name, value in values.items():
                text = text.replace("{{" + name + "}}", str(value))
            tls_server = text
        conf = render(
            "nginx.conf",
            self.dir / "nginx.conf",
            USER=_nginx_user(),
            WORKERS=self.workers,
            DIR=self.dir,
            PORT=self.port,
            ORIGIN_PORT=self.origin_port,
            MAX_SIZE=self.max_size,
            TLS_SERVER=tls_server,
        )
        self.process = _start_nginx(self.dir, conf)
        wait_port(self.port, self.process, "nginx")
        return self


class Varnish(Service):
    name = "varnish"

    def __init__(self, workdir: Path, origin_port: int, storage: str = "malloc,2G") -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.origin_port = origin_port
        self.storage = storage
        self.port = free_port()
        self.admin_port = free_port()

    def start(self) -> Varnish:
        vcl = render("varnish.vcl", self.dir / "bench.vcl", ORIGIN_PORT=self.origin_port)
        secret = self.dir / "secret"
        secret.write_bytes(os.urandom(32))
        secret.chmod(0o600)
        self.process = spawn(
            [
                "varnishd",
                "-F",
                "-j",
                "none",  # no privilege separation: our temp dirs are 0700
                "-a",
                f"127.0.0.1:{self.port}",
                "-T",
                f"127.0.0.1:{self.admin_port}",
                "-S",
                str(secret),
                "-f",
                str(vcl),
                "-s",
                self.storage,
                "-n",
                str(self.dir / "work"),
            ],
            log=self.dir / "varnishd.log",
        )
        wait_port(self.port, self.process, "varnishd", timeout=60)
        return self


class Pullzone(Service):
    name = "pullzone"

    def __init__(
        self,
        workdir: Path,
        workers: int,
        max_cache_size: str = "8GiB",
        *,
        role: str = "all",
        extra: tuple[str, ...] = (),
    ) -> None:
        """`role` and `extra` (more `serve` options): a cluster node (bench/propagation.py)."""
        self.role = role
        self.extra = extra
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.dir / "data"
        self.workers = workers
        self.max_cache_size = max_cache_size
        self.port = free_port()
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}/v2"
        self.api: httpx.Client | None = None
        self.started_in = 0.0
        self.tls_port = 0  # set by enable_tls(): `serve --edge-tls 127.0.0.1:PORT`

    def enable_tls(self) -> None:
        """Before start(): an HTTPS listener too (certificates come through the API)."""
        self.tls_port = free_port()

    def start(self, timeout: float = 180) -> Pullzone:
        # The per-key API rate limit is not what the bench measures: off.
        env = {**os.environ, "PULLZONE_API_KEY": API_KEY, "PULLZONE_API_RATE_LIMIT": "0"}
        started = time.monotonic()
        self.process = spawn(
            [
                sys.executable,
                "-m",
                "pullzone",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--edge",
                f"127.0.0.1:{self.port}",
                "--api",
                f"127.0.0.1:{self.api_port}",
                "--workers",
                str(self.workers),
                "--max-cache-size",
                self.max_cache_size,
                *(("--role", self.role) if self.role != "all" else ()),
                *(("--edge-tls", f"127.0.0.1:{self.tls_port}") if self.tls_port else ()),
                *self.extra,
            ],
            log=self.dir / "serve.log",
            env=env,
        )
        self.api = httpx.Client(base_url=self.api_url, headers={"X-API-Key": API_KEY}, timeout=60)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"pullzone serve exited with status {self.process.returncode}:\n"
                    + self.log_tail()
                )
            try:
                if (
                    self.role in ("edge", "shield")
                    or self.api.get("/zones/http/pull").status_code == 200
                ):
                    if self.role != "api":
                        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                            pass
                    self.started_in = time.monotonic() - started
                    return self
            except (httpx.TransportError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError("pullzone serve did not become ready:\n" + self.log_tail())

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.dir / "serve.log").read_text(errors="replace")
        except OSError:
            return "(no serve.log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
            self.api = None
        super().stop()

    def create_zone(self, alias: str, origin: str, **fields: Any) -> dict[str, Any]:
        assert self.api is not None
        r = self.api.post(
            "/zones/http/pull/new",
            json={"name": alias, "alias": alias, "origin": origin, **fields},
        )
        if r.status_code != 200:
            raise RuntimeError(f"creating zone {alias!r}: {r.status_code} {r.text}")
        return dict(r.json()["zone"])

    def install_certificate(self, zone_id: int, crt: str, key: str, *, http2: bool) -> int:
        """Upload a certificate (`POST /account/ssl/new`) and enable it on the zone
        (`POST /zones/http/pull/{id}/ssl`), as a user would; returns its id."""
        assert self.api is not None
        r = self.api.post(
            "/account/ssl/new",
            json={"name": f"bench-{zone_id}", "crt": crt, "key": key, "cabundle": ""},
        )
        if r.status_code != 200:
            raise RuntimeError(f"uploading the certificate: {r.status_code} {r.text}")
        cert_id = int(r.json()["cert"]["id"])
        body = {"enabled": "Y", "certid": cert_id, "http2": "Y" if http2 else "N"}
        r = self.api.post(f"/zones/http/pull/{zone_id}/ssl", json=body)
        if r.status_code != 200:
            raise RuntimeError(f"enabling ssl on zone {zone_id}: {r.status_code} {r.text}")
        return cert_id

    def purge(self, zone_id: int, files: list[str] | None = None, *, delete: bool = False) -> float:
        """One purge; returns its answer time in ms. Raises PurgeUnavailable on 404."""
        assert self.api is not None
        params = {"delete": "true"} if delete else None
        content = None if files is None else _json_bytes({"files": files})
        headers = {"Content-Type": "application/json"} if content is not None else None
        for _attempt in range(20):
            t0 = time.perf_counter()
            r = self.api.post(
                f"/zones/http/pull/{zone_id}/purge",
                params=params,
                content=content,
                headers=headers,
            )
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code == 200:
                return elapsed
            if r.status_code == 404:
                raise PurgeUnavailable(r.text[:200])
            if r.status_code == 429:  # a rate limit is not what we measure: wait it out
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            raise RuntimeError(f"purge answered {r.status_code}: {r.text[:300]}")
        raise RuntimeError("purge kept answering 429")

    def worker_pids(self) -> list[int]:
        """The edge worker processes (spawned by multiprocessing) of this server."""
        if self.process is None:
            return []
        pids = []
        for child in _children_of(self.process.pid):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                pids.append(child)
        return pids


def _json_bytes(value: object) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":")).encode()


def _children_of(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = _children_of(todo.pop())
        out.extend(kids)
        todo.extend(kids)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and every process below it (live ones)."""
    total = 0
    for p in (pid, *descendants(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


_PACKAGES = {
    "wrk": "wrk",
    "nginx": "nginx",
    "varnishd": "varnish",
    "h2load": "nghttp2-client",
}  # tool: Debian package


def ensure_tools(install: bool, tools: tuple[str, ...] = ("wrk", "nginx", "varnishd")) -> None:
    """`tools` (by default wrk, nginx and varnish) from Debian packages, installed when
    missing (as root)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    packages = [_PACKAGES[tool] for tool in missing]
    if not install:
        raise SystemExit(f"bench: missing {', '.join(missing)} (run without --no-install)")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            f"bench: missing {', '.join(missing)}; install them with\n"
            f"  sudo apt-get update && sudo apt-get install -y {' '.join(packages)}"
        )
    print(f"bench: installing {' '.join(packages)} (missing: {', '.join(missing)}) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def versions() -> dict[str, str]:
    def first_line(args: list[str]) -> str:
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        text = (r.stdout + r.stderr).strip().splitlines()
        return text[0] if text else "?"

    from importlib.metadata import version

    def number(text: str) -> str:
        found = re.search(r"\d+(\.\d+)+", text)
        return found.group(0) if found else text

    return {
        "pullzone": version("pullzone"),
        "python": sys.version.split()[0],
        "nginx": number(first_line(["nginx", "-v"])),
        "varnish": number(first_line(["varnishd", "-V"])),
        "wrk": number(first_line(["wrk", "-v"])),
    }


def machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem / 1024**3, 1),
        "kernel": os.uname().release,
    }


def source_state() -> dict[str, Any]:
    """The commit pullzone was measured at, and whether its sources had local changes
    (read-only git commands; empty when this is not a git checkout)."""
    repo = CONFIGS.parent.parent

    def git(*args: str) -> str:
        try:
            r = subprocess.run(
                ["git", "--no-optional-locks", "-C", str(repo), *args],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return r.stdout.strip() if r.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    changed = git("status", "--porcelain", "--", "src")
    return {"commit": commit, "src_changed": bool(changed)}
