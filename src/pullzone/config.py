"""Settings of one `pullzone serve` node and where it keeps its files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pullzone.spec.uri import split_authority

# The largest object a fill stores (--max-object-size): nginx's proxy_max_temp_file_size
# default, the most it spools of one response to disk; a tenth of the default
# --max-cache-size, so one object never takes more than a slice of the cache.
DEFAULT_MAX_OBJECT_SIZE = 1024**3


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """`HOST:PORT`, `[::1]:PORT`, `:PORT` or `HOST` into (host, port)."""
    host, port = split_authority(text)
    if port and not port.isdigit():
        raise ValueError(f"invalid port in {text!r}")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError(f"invalid address {text!r}: write an IPv6 address as [::1]:PORT")
    host = host.removeprefix("[").removesuffix("]")  # a socket takes an IPv6 address bare
    return host or "127.0.0.1", int(port) if port else default_port


# Descriptors a worker keeps for itself whatever its traffic: SQLite databases and their
# journals, the access log, the listening socket, the event loop's own, the stats file.
FD_RESERVE = 64
# A worker raises its soft RLIMIT_NOFILE to its hard limit, up to this many.
NOFILE_WANTED = 65536


def default_worker_connections(nofile: int) -> int:
    """Client connections per worker for a limit of `nofile` descriptors: half of what the
    reserve leaves, the other half for what connections open in turn (an origin socket,
    a cache file) — as nginx's worker_connections, but derived from the limit."""
    return max(1, (nofile - FD_RESERVE) // 2)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    edge_host: str = "127.0.0.1"
    edge_port: int = 8080
    api_host: str = "127.0.0.1"
    api_port: int = 8081
    workers: int = max(1, os.cpu_count() or 1)
    max_cache_size: int = 10 * 1024**3
    max_object_size: int = DEFAULT_MAX_OBJECT_SIZE
    edge_domain: str = "localhost"
    origin_connect_timeout: float = 10.0
    origin_read_timeout: float = 60.0
    # Client connections per edge worker; None: default_worker_connections(RLIMIT_NOFILE).
    worker_connections: int | None = None
    admin_key: str | None = None
    api_rate: float = 20.0  # requests per second per API key; 0: no limit
    api_burst: int = 100  # requests one key may make at once before api_rate applies
    api_cert: str | None = None  # PEM certificate (chain): the API listens with TLS
    api_cert_key: str | None = None  # its private key (PEM)
    access_log: str | None = None  # a file, or "-" for standard output
    access_log_format: str = "combined"  # or "json"
    # Cluster mode (README, Cluster): NATS servers to share the event log through; none: one node.
    cluster: tuple[str, ...] = ()
    node_id: str = "node"
    role: str = "all"  # all, edge or api
    replicas: int = 1  # JetStream replicas of the stream and buckets (3 in production)
    purge_wait: float = 2.0  # how long an answer waits for live edges to confirm
    max_bus_silence: float = 30.0  # cut off longer than this, an edge revalidates everything

    @property
    def runs_edge(self) -> bool:
        return self.role in ("all", "edge")

    @property
    def runs_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def control_db(self) -> Path:
        return self.data_dir / "control.db"

    @property
    def cache_db(self) -> Path:
        return self.data_dir / "cache.db"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def stats_dir(self) -> Path:
        return self.data_dir / "run" / "stats"

    @property
    def seq_path(self) -> Path:
        return self.data_dir / "run" / "seq"

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin.key"


def default_data_dir() -> Path:
    env = os.environ.get("PULLZONE_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg) / "pullzone" if xdg else Path.home() / ".local" / "share" / "pullzone"
