"""`pullzone serve` runs a node (edge and API) on this machine; `pullzone demo` a sample setup."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import ssl
from pathlib import Path
from typing import Annotated

import typer

from pullzone import defaults
from pullzone.bus.retention import check_retention
from pullzone.cli import options
from pullzone.cli.options import Address, LogFormat, Role
from pullzone.config import FD_RESERVE, Settings, default_data_dir
from pullzone.edge.client import networks
from pullzone.zones.durations import size_text

DEFAULT_EDGE = Address(defaults.HOST, defaults.EDGE_PORT)
DEFAULT_API = Address(defaults.HOST, defaults.API_PORT)
DEFAULT_LOG_FORMAT = LogFormat(defaults.ACCESS_LOG_FORMAT)
DEFAULT_ROLE = Role(defaults.ROLE)

EdgeAddress = Annotated[
    Address,
    typer.Option(
        "--edge",
        envvar="PULLZONE_EDGE",
        metavar="HOST:PORT",
        parser=options.address(DEFAULT_EDGE.port),
        help="Where the edge (the CDN itself) listens.",
    ),
]
ApiAddress = Annotated[
    Address,
    typer.Option(
        "--api",
        envvar="PULLZONE_API",
        metavar="HOST:PORT",
        parser=options.address(DEFAULT_API.port),
        help="Where the management API listens.",
    ),
]


EdgeTlsAddress = Annotated[
    Address | None,
    typer.Option(
        "--edge-tls",
        envvar="PULLZONE_EDGE_TLS",
        metavar="HOST:PORT",
        parser=options.address(defaults.EDGE_TLS_PORT),
        show_default="none: no HTTPS",
        help="Where the edge serves HTTPS (certificates chosen by SNI among the zones' "
        "hostnames; HTTP/2 for zones with ssl.http2).",
    ),
]


def _clash(a: Address, b: Address) -> bool:
    wildcard = {"0.0.0.0", "::", ""}
    return a.port == b.port and (a.host == b.host or a.host in wildcard or b.host in wildcard)


def _check_no_shared_port(edge: Address, api: Address, edge_tls: Address | None = None) -> None:
    if _clash(edge, api):
        raise typer.BadParameter(
            f"the API and the edge cannot both listen on port {api.port}", param_hint="'--api'"
        )
    for other, what in ((edge, "edge"), (api, "API")):
        if edge_tls is not None and _clash(edge_tls, other):
            raise typer.BadParameter(
                f"--edge-tls and the {what} cannot both listen on port {edge_tls.port}",
                param_hint="'--edge-tls'",
            )


def serve_settings(
    *,
    data_dir: Path | None,
    edge: Address,
    api: Address,
    workers: int | None,
    worker_connections: int | None = None,
    max_cache_size: int,
    max_object_size: int,
    edge_domain: str,
    origin_timeout: float,
    api_rate_limit: float,
    api_burst: int,
    admin_key: str | None,
    edge_tls: Address | None = None,
) -> Settings:
    """The node's settings from the parsed `serve` options; None is an option not given.

    Raises typer.BadParameter when the edge and the API would listen on the same port.
    """
    _check_no_shared_port(edge, api, edge_tls)
    return Settings(
        data_dir=(data_dir or default_data_dir()).expanduser(),
        edge_host=edge.host,
        edge_port=edge.port,
        edge_tls_host=edge_tls.host if edge_tls is not None else defaults.HOST,
        edge_tls_port=edge_tls.port if edge_tls is not None else None,
        api_host=api.host,
        api_port=api.port,
        workers=workers or defaults.workers(),
        worker_connections=worker_connections,
        max_cache_size=max_cache_size,
        max_object_size=max_object_size,
        edge_domain=edge_domain,
        origin_connect_timeout=min(defaults.ORIGIN_CONNECT_TIMEOUT, origin_timeout),
        origin_read_timeout=origin_timeout,
        api_rate=api_rate_limit,
        api_burst=api_burst,
        admin_key=admin_key or None,
    )


def client_settings(
    settings: Settings,
    *,
    geoip_db: Path | None,
    trusted_proxies: str,
    proxy_protocol: bool,
) -> Settings:
    """`settings` with how the edge knows its clients: their country (--geoip-db), the
    proxies whose X-Forwarded-For names them, and the PROXY protocol header."""
    if geoip_db is not None:
        from pullzone.edge.geoip import GeoIpError, check

        try:
            check(geoip_db)
        except GeoIpError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--geoip-db'") from None
    proxies = tuple(item.strip() for item in trusted_proxies.split(",") if item.strip())
    for item in proxies:
        try:
            networks((item,))
        except ValueError:
            raise typer.BadParameter(
                f"{item!r} is not an address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)",
                param_hint="'--trusted-proxies'",
            ) from None
    return dataclasses.replace(
        settings,
        geoip_db=str(geoip_db) if geoip_db is not None else None,
        trusted_proxies=proxies,
        proxy_protocol=proxy_protocol,
    )


def check_tls(cert: Path, key: Path) -> None:
    """Refuse a certificate and key that do not load together (before anything starts)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise typer.BadParameter(
            f"{cert} and {key}: not a PEM certificate and its key ({exc})",
            param_hint="'--api-cert'",
        ) from None


def cluster_settings(
    settings: Settings,
    *,
    urls: str,
    node_id: str | None,
    role: Role,
    replicas: int,
    purge_wait: float,
    max_bus_silence: float,
    stream_retention: float = defaults.STREAM_RETENTION,
    snapshot_interval: float = defaults.SNAPSHOT_INTERVAL,
) -> Settings:
    """`settings` joined to the cluster at `urls` (comma-separated nats:// URLs)."""
    refused = check_retention(stream_retention, snapshot_interval)
    if refused is not None:
        raise typer.BadParameter(refused, param_hint="'--stream-retention'")
    servers = tuple(url.strip() for url in urls.split(",") if url.strip())
    for url in servers:
        if not re.match(r"^(nats|tls)://[^/\s]+$", url):
            raise typer.BadParameter(
                f"{url!r} is not a NATS URL like nats://HOST:4222", param_hint="'--cluster'"
            )
    if not servers:
        raise typer.BadParameter("give at least one nats://HOST:PORT", param_hint="'--cluster'")
    name = node_id or re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "node"
    if not re.match(r"^[A-Za-z0-9_-]{1,64}$", name):
        raise typer.BadParameter(
            f"{name!r}: letters, digits, '-' and '_' only (at most 64)", param_hint="'--node-id'"
        )
    return dataclasses.replace(
        settings,
        cluster=servers,
        node_id=name,
        role=role.value,
        replicas=replicas,
        purge_wait=purge_wait,
        max_bus_silence=max_bus_silence,
        stream_retention=stream_retention,
        snapshot_interval=snapshot_interval,
    )


def acme_settings(
    settings: Settings,
    *,
    directory: str,
    email: str,
    ca_bundle: Path | None,
    retry: float = defaults.ACME_RETRY_MIN,
) -> Settings:
    """`settings` with automatic certificates from the ACME directory at `directory`."""
    directory = directory.strip()
    if directory and not re.match(r"^https?://[^/\s]+", directory):
        raise typer.BadParameter(
            f"{directory!r} is not an ACME directory URL like "
            "https://acme-v02.api.letsencrypt.org/directory",
            param_hint="'--acme-directory'",
        )
    if email and not re.match(r"^[^@\s]+@[^@\s]+$", email):
        raise typer.BadParameter(f"{email!r} is not an e-mail address", param_hint="'--acme-email'")
    return dataclasses.replace(
        settings,
        acme_directory=directory,
        acme_email=email,
        acme_ca_bundle=str(ca_bundle) if ca_bundle is not None else "",
        acme_retry_min=max(1.0, retry),
        acme_retry_max=max(retry, defaults.ACME_RETRY_MAX),
    )


def serve(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="PULLZONE_DATA_DIR",
            metavar="DIR",
            file_okay=False,
            show_default="$XDG_DATA_HOME/pullzone or ~/.local/share/pullzone",
            help="Where zones, keys and cached objects are kept.",
        ),
    ] = None,
    edge: EdgeAddress = DEFAULT_EDGE,
    api: ApiAddress = DEFAULT_API,
    edge_tls: EdgeTlsAddress = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            envvar="PULLZONE_WORKERS",
            metavar="N",
            min=1,
            show_default="number of CPUs",
            help="Edge worker processes.",
        ),
    ] = None,
    worker_connections: Annotated[
        int | None,
        typer.Option(
            "--worker-connections",
            envvar="PULLZONE_WORKER_CONNECTIONS",
            metavar="N",
            min=1,
            show_default=f"(RLIMIT_NOFILE - {FD_RESERVE}) / 2",
            help="Client connections per edge worker; beyond, the oldest idle ones are closed.",
        ),
    ] = None,
    max_cache_size: Annotated[
        int,
        typer.Option(
            "--max-cache-size",
            envvar="PULLZONE_MAX_CACHE_SIZE",
            metavar="SIZE",
            parser=options.size,
            show_default=size_text(defaults.MAX_CACHE_SIZE),
            help="Disk space for cached objects (500MiB, 10GiB, 1TB, …); LRU eviction above it.",
        ),
    ] = defaults.MAX_CACHE_SIZE,
    max_object_size: Annotated[
        int,
        typer.Option(
            "--max-object-size",
            envvar="PULLZONE_MAX_OBJECT_SIZE",
            metavar="SIZE",
            parser=options.size,
            show_default=size_text(defaults.MAX_OBJECT_SIZE),
            help="The largest object cached; a larger response is relayed, not stored.",
        ),
    ] = defaults.MAX_OBJECT_SIZE,
    edge_domain: Annotated[
        str,
        typer.Option(
            "--edge-domain",
            envvar="PULLZONE_EDGE_DOMAIN",
            metavar="DOMAIN",
            parser=options.edge_domain,
            help="Zones answer on ALIAS.DOMAIN (their fqdn) besides their cnames.",
        ),
    ] = defaults.EDGE_DOMAIN,
    origin_timeout: Annotated[
        float,
        typer.Option(
            "--origin-timeout",
            envvar="PULLZONE_ORIGIN_TIMEOUT",
            metavar="SECONDS",
            parser=options.seconds,
            help="How long to wait for an origin's response (connecting: at most "
            f"{defaults.ORIGIN_CONNECT_TIMEOUT:g} s).",
        ),
    ] = defaults.ORIGIN_TIMEOUT,
    api_rate_limit: Annotated[
        float,
        typer.Option(
            "--api-rate-limit",
            envvar="PULLZONE_API_RATE_LIMIT",
            metavar="N",
            parser=options.rate,
            help="API calls per second per key, on average (0: no limit); above it, 429.",
        ),
    ] = defaults.API_RATE,
    api_burst: Annotated[
        int,
        typer.Option(
            "--api-burst",
            envvar="PULLZONE_API_BURST",
            metavar="N",
            min=1,
            help="API calls one key may make at once before --api-rate-limit applies.",
        ),
    ] = defaults.API_BURST,
    api_cert: Annotated[
        Path | None,
        typer.Option(
            "--api-cert",
            envvar="PULLZONE_API_CERT",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default="none: plain HTTP",
            help="PEM certificate (chain) for the API: it then listens with TLS.",
        ),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            "--api-key-file",
            envvar="PULLZONE_API_KEY_FILE",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The PEM private key of --api-cert.",
        ),
    ] = None,
    access_log: Annotated[
        str | None,
        typer.Option(
            "--access-log",
            envvar="PULLZONE_ACCESS_LOG",
            metavar="FILE",
            show_default="none",
            help="Log every edge response to FILE ('-': standard output).",
        ),
    ] = None,
    access_log_format: Annotated[
        LogFormat,
        typer.Option(
            "--access-log-format",
            envvar="PULLZONE_ACCESS_LOG_FORMAT",
            case_sensitive=False,
            help="combined (Apache/nginx) or json (one object a line).",
        ),
    ] = DEFAULT_LOG_FORMAT,
    acme_directory: Annotated[
        str,
        typer.Option(
            "--acme-directory",
            envvar="PULLZONE_ACME_DIRECTORY",
            metavar="URL",
            show_default="none: HTTPS zones need an uploaded certificate",
            help="ACME (RFC 8555) directory URL, e.g. "
            "https://acme-v02.api.letsencrypt.org/directory: zones with ssl.enabled=Y and "
            "no ssl.certid get a certificate from it automatically.",
            rich_help_panel="HTTPS",
        ),
    ] = defaults.ACME_DIRECTORY,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            envvar="PULLZONE_NATS_URL",
            metavar="nats://HOST:PORT[,…]",
            show_default=False,
            help="Share zones, keys and purges with other nodes through NATS JetStream "
            "(several URLs of one NATS cluster: comma-separated).",
            rich_help_panel="Cluster",
        ),
    ] = None,
    node_id: Annotated[
        str | None,
        typer.Option(
            "--node-id",
            envvar="PULLZONE_NODE_ID",
            metavar="ID",
            show_default="host name",
            help="This node's name in the cluster.",
            rich_help_panel="Cluster",
        ),
    ] = None,
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            envvar="PULLZONE_ROLE",
            case_sensitive=False,
            help="What this cluster node runs: the edge, the API, both, or an origin shield.",
            rich_help_panel="Cluster",
        ),
    ] = DEFAULT_ROLE,
    replicas: Annotated[
        int,
        typer.Option(
            "--replicas",
            envvar="PULLZONE_REPLICAS",
            min=1,
            max=5,
            help="JetStream replicas of the event stream, when this node creates it (3 for "
            "a NATS cluster of three).",
            rich_help_panel="Cluster",
        ),
    ] = defaults.REPLICAS,
    purge_wait: Annotated[
        float,
        typer.Option(
            "--purge-wait",
            envvar="PULLZONE_PURGE_WAIT",
            metavar="SECONDS",
            parser=options.seconds,
            help="How long an API answer waits for every live edge to apply a change; the "
            "late ones are listed in `pending`.",
            rich_help_panel="Cluster",
        ),
    ] = defaults.PURGE_WAIT,
    max_bus_silence: Annotated[
        float,
        typer.Option(
            "--max-bus-silence",
            envvar="PULLZONE_MAX_BUS_SILENCE",
            metavar="SECONDS",
            parser=options.seconds,
            help="An edge cut off from the bus longer than this revalidates every object "
            "before serving it, until it is back.",
            rich_help_panel="Cluster",
        ),
    ] = defaults.MAX_BUS_SILENCE,
    stream_retention: Annotated[
        float,
        typer.Option(
            "--stream-retention",
            envvar="PULLZONE_STREAM_RETENTION",
            metavar="DURATION",
            parser=options.span,
            show_default="7d",
            help="How long the cluster's event stream keeps an event (30m, 12h, 7d; 0: "
            "forever); the stream is updated to it. A node that was away longer starts "
            "from a snapshot and revalidates its whole cache.",
            rich_help_panel="Cluster",
        ),
    ] = defaults.STREAM_RETENTION,
    snapshot_interval: Annotated[
        float,
        typer.Option(
            "--snapshot-interval",
            envvar="PULLZONE_SNAPSHOT_INTERVAL",
            metavar="DURATION",
            parser=options.span,
            show_default="15m",
            help="At most this long between two snapshots of the cluster's state (written "
            f"after {defaults.SNAPSHOT_EVERY:,} events too); at most half the retention.",
            rich_help_panel="Cluster",
        ),
    ] = defaults.SNAPSHOT_INTERVAL,
    acme_email: Annotated[
        str,
        typer.Option(
            "--acme-email",
            envvar="PULLZONE_ACME_EMAIL",
            metavar="ADDRESS",
            show_default="none",
            help="The contact address of the ACME account (expiry notices).",
            rich_help_panel="HTTPS",
        ),
    ] = "",
    acme_ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--acme-ca-bundle",
            envvar="PULLZONE_ACME_CA_BUNDLE",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default="the system's trust store",
            help="PEM CA certificates to trust for the ACME directory's TLS (a private or "
            "test CA).",
            rich_help_panel="HTTPS",
        ),
    ] = None,
    acme_retry: Annotated[
        float,
        typer.Option(
            "--acme-retry",
            envvar="PULLZONE_ACME_RETRY",
            metavar="SECONDS",
            parser=options.seconds,
            help="After a failed order, the next try waits this long, doubling up to "
            f"{defaults.ACME_RETRY_MAX:g} s.",
            rich_help_panel="HTTPS",
        ),
    ] = defaults.ACME_RETRY_MIN,
    geoip_db: Annotated[
        Path | None,
        typer.Option(
            "--geoip-db",
            envvar="PULLZONE_GEOIP_DB",
            metavar="FILE",
            dir_okay=False,
            show_default="none: zones cannot switch geoblock on",
            help="A MaxMind GeoIP2/GeoLite2 Country database (.mmdb): the clients' "
            "countries, for zones' geoblock.",
            rich_help_panel="Clients",
        ),
    ] = None,
    trusted_proxies: Annotated[
        str,
        typer.Option(
            "--trusted-proxies",
            envvar="PULLZONE_TRUSTED_PROXIES",
            metavar="CIDR,…",
            show_default="none",
            help="Proxies (addresses, CIDRs) whose X-Forwarded-For names the client: the "
            "right-most address in it that is not one of them.",
            rich_help_panel="Clients",
        ),
    ] = "",
    proxy_protocol: Annotated[
        bool,
        typer.Option(
            "--proxy-protocol",
            envvar="PULLZONE_PROXY_PROTOCOL",
            help="The edge listeners expect a PROXY protocol (v1 or v2) header on every "
            "connection, as behind HAProxy or a cloud load balancer; one without is closed.",
            rich_help_panel="Clients",
        ),
    ] = False,
) -> None:
    """Run the edge and the API on this machine.

    Admin key: PULLZONE_API_KEY, else one generated on first start into DATA_DIR/admin.key.
    """
    if not cluster and role is not Role.all:
        raise typer.BadParameter(
            f"--role {role.value} needs --cluster: a single node runs both edge and API",
            param_hint="'--role'",
        )
    settings = serve_settings(
        data_dir=data_dir,
        edge=edge,
        api=api,
        workers=workers,
        worker_connections=worker_connections,
        max_cache_size=max_cache_size,
        max_object_size=max_object_size,
        edge_domain=edge_domain,
        origin_timeout=origin_timeout,
        api_rate_limit=api_rate_limit,
        api_burst=api_burst,
        admin_key=os.environ.get("PULLZONE_API_KEY"),
        edge_tls=edge_tls,
    )
    if (api_cert is None) != (api_key_file is None):
        raise typer.BadParameter(
            "give both --api-cert and --api-key-file, or neither", param_hint="'--api-cert'"
        )
    if api_cert is not None and api_key_file is not None:
        check_tls(api_cert, api_key_file)
        settings = dataclasses.replace(
            settings, api_cert=str(api_cert), api_cert_key=str(api_key_file)
        )
    if access_log:
        settings = dataclasses.replace(
            settings, access_log=access_log, access_log_format=access_log_format.value
        )
    settings = client_settings(
        settings,
        geoip_db=geoip_db,
        trusted_proxies=trusted_proxies,
        proxy_protocol=proxy_protocol,
    )
    settings = acme_settings(
        settings,
        directory=acme_directory,
        email=acme_email,
        ca_bundle=acme_ca_bundle,
        retry=acme_retry,
    )
    if cluster:
        settings = cluster_settings(
            settings,
            urls=cluster,
            node_id=node_id,
            role=role,
            replicas=replicas,
            purge_wait=purge_wait,
            max_bus_silence=max_bus_silence,
            stream_retention=stream_retention,
            snapshot_interval=snapshot_interval,
        )
    from pullzone.server import supervisor

    raise typer.Exit(supervisor.run(settings))


def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            file_okay=False,
            show_default="a fresh temporary directory",
            help="Where the demo keeps its data.",
        ),
    ] = None,
    edge: EdgeAddress = DEFAULT_EDGE,
    api: ApiAddress = DEFAULT_API,
) -> None:
    """Run a sample origin, a server and one zone, and print the curl lines to try."""
    _check_no_shared_port(edge, api)
    from pullzone import demo as sample

    raise typer.Exit(sample.run(data_dir, str(edge), str(api)))
