"""Settings of one `pullzone serve` node and where it keeps its files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pullzone import defaults
from pullzone.spec.uri import split_authority


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """`HOST:PORT`, `[::1]:PORT`, `:PORT` or `HOST` into (host, port)."""
    host, port = split_authority(text)
    if port and not port.isdigit():
        raise ValueError(f"invalid port in {text!r}")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError(f"invalid address {text!r}: write an IPv6 address as [::1]:PORT")
    host = host.removeprefix("[").removesuffix("]")  # a socket takes an IPv6 address bare
    return host or defaults.HOST, int(port) if port else default_port


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
    edge_host: str = defaults.HOST
    edge_port: int = defaults.EDGE_PORT
    # The edge's HTTPS listener (--edge-tls); None: none.
    edge_tls_host: str = defaults.HOST
    edge_tls_port: int | None = None
    api_host: str = defaults.HOST
    api_port: int = defaults.API_PORT
    workers: int = field(default_factory=defaults.workers)
    max_cache_size: int = defaults.MAX_CACHE_SIZE
    max_object_size: int = defaults.MAX_OBJECT_SIZE
    edge_domain: str = defaults.EDGE_DOMAIN
    origin_connect_timeout: float = defaults.ORIGIN_CONNECT_TIMEOUT
    origin_read_timeout: float = defaults.ORIGIN_TIMEOUT
    # Client connections per edge worker; None: default_worker_connections(RLIMIT_NOFILE).
    worker_connections: int | None = None
    admin_key: str | None = None
    api_rate: float = defaults.API_RATE
    api_burst: int = defaults.API_BURST
    api_cert: str | None = None  # PEM certificate (chain): the API listens with TLS
    api_cert_key: str | None = None  # its private key (PEM)
    acme_directory: str = defaults.ACME_DIRECTORY  # ACME (RFC 8555) directory URL; "": none
    access_log: str | None = None  # a file, or "-" for standard output
    access_log_format: str = defaults.ACCESS_LOG_FORMAT
    # Cluster mode (README, Cluster): NATS servers to share the event log through; none: one node.
    cluster: tuple[str, ...] = ()
    node_id: str = "node"
    role: str = defaults.ROLE
    replicas: int = defaults.REPLICAS
    purge_wait: float = defaults.PURGE_WAIT
    max_bus_silence: float = defaults.MAX_BUS_SILENCE
    # How long the cluster's stream keeps events (0: forever), and how often snapshots of
    # the replicated state are written at least (docs/cluster.md, Retention and snapshots).
    stream_retention: float = defaults.STREAM_RETENTION
    snapshot_interval: float = defaults.SNAPSHOT_INTERVAL
    # Automatic certificates (ACME, RFC 8555): the CA's directory URL ("": none), the
    # account's contact address, and a PEM bundle to trust for the directory's own TLS
    # (acme_directory, above).
    acme_email: str = ""
    acme_ca_bundle: str = ""
    acme_retry_min: float = defaults.ACME_RETRY_MIN  # a failed order's first retry, doubling
    acme_retry_max: float = defaults.ACME_RETRY_MAX
    # The client's address and country (docs/zones.md, Blocks): a MaxMind Country
    # database (--geoip-db), the proxies whose X-Forwarded-For names the client, and
    # whether the edge listeners expect a PROXY protocol header.
    geoip_db: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    proxy_protocol: bool = False
    # The secret of requests the node makes to its own edge (edge/internal.py): made by
    # the supervisor at each start, handed to its workers; "": none accepted.
    internal_token: str = ""
    # The cluster's secret (server/cluster.py): what an edge shows a shield; "": no cluster.
    cluster_token: str = ""

    @property
    def runs_edge(self) -> bool:
        return self.role in ("all", "edge", "shield")

    @property
    def is_shield(self) -> bool:
        """An origin shield: an edge whose clients are the cluster's other edges."""
        return self.role == "shield"

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
    def stats_db(self) -> Path:
        """The node's traffic history (control/stats_history.py): kept across restarts."""
        return self.data_dir / "stats.db"

    @property
    def stats_dir(self) -> Path:
        return self.data_dir / "run" / "stats"

    @property
    def tls_dir(self) -> Path:
        """Where a worker spills a certificate's key (mode 0600, removed once loaded)
        when it cannot load it from memory (edge/tls.py)."""
        return self.data_dir / "run" / "tls"

    @property
    def ticket_key_path(self) -> Path:
        """The node's TLS session ticket key (mode 0600), written by the supervisor and
        read by every edge worker (edge/tickets.py)."""
        return self.data_dir / "run" / "tls-ticket.key"

    @property
    def shields_path(self) -> Path:
        """The cluster's live origin shields, for the workers (edge/shields.py)."""
        return self.data_dir / "run" / "shields.json"

    @property
    def seq_path(self) -> Path:
        return self.data_dir / "run" / "seq"

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin.key"

    @property
    def acme_dir(self) -> Path:
        """The ACME account key and registration (mode 0700, the files 0600)."""
        return self.data_dir / "acme"


def default_data_dir() -> Path:
    env = os.environ.get("PULLZONE_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg) / "pullzone" if xdg else Path.home() / ".local" / "share" / "pullzone"
