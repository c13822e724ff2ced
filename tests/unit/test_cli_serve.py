"""What `pullzone serve` makes of its options: the Settings of the node it starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from pullzone.cli.main import app
from pullzone.cli.options import Address, address, edge_domain, rate, seconds, size
from pullzone.cli.serve import acme_settings, serve_settings
from pullzone.config import Settings, default_worker_connections


def serve_options(*args: str) -> dict[str, Any]:
    """The values typer gives `serve` for `pullzone serve ARGS` and the environment.

    Only parsed: the command does not run. The cluster and access log options are left out.
    """
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    serve = root.get_command(typer.Context(root), "serve")
    assert serve is not None
    values = serve.make_context("serve", list(args)).params
    # Options serve() applies after serve_settings (cluster_settings, the access log).
    later = {"cluster", "node_id", "role", "replicas", "purge_wait", "max_bus_silence"}
    later |= {"stream_retention", "snapshot_interval"}
    later |= {"access_log", "access_log_format", "api_cert", "api_key_file"}
    later |= {"acme_directory", "acme_email", "acme_ca_bundle", "acme_retry"}
    later |= {"geoip_db", "trusted_proxies", "proxy_protocol"}
    return {k: v for k, v in values.items() if k not in later}


def given(**values: Any) -> Settings:
    """serve_settings of some values, the others fixed."""
    defaults: dict[str, Any] = {
        "data_dir": Path("/srv/pullzone"),
        "edge": Address("127.0.0.1", 8080),
        "api": Address("127.0.0.1", 8081),
        "workers": 2,
        "max_cache_size": 1000,
        "max_object_size": 100,
        "edge_domain": "localhost",
        "origin_timeout": 60.0,
        "api_rate_limit": 20.0,
        "api_burst": 100,
        "admin_key": None,
    }
    return serve_settings(**{**defaults, **values})


# --- serve_settings ---------------------------------------------------------------------------


def test_settings_of_the_given_values() -> None:
    settings = given(
        data_dir=Path("/var/lib/pz"),
        edge=Address("0.0.0.0", 80),
        api=Address("::1", 9001),
        workers=3,
        max_cache_size=500 * 1024**2,
        max_object_size=64 * 1024**2,
        edge_domain="cdn.example.com",
        origin_timeout=4.0,
        api_rate_limit=5.5,
        api_burst=7,
        admin_key="admin-key",
    )
    assert settings == Settings(
        data_dir=Path("/var/lib/pz"),
        edge_host="0.0.0.0",
        edge_port=80,
        api_host="::1",
        api_port=9001,
        workers=3,
        max_cache_size=500 * 1024**2,
        max_object_size=64 * 1024**2,
        edge_domain="cdn.example.com",
        origin_connect_timeout=4.0,
        origin_read_timeout=4.0,
        api_rate=5.5,
        api_burst=7,
        admin_key="admin-key",
    )


def test_connecting_to_an_origin_waits_at_most_10_seconds() -> None:
    settings = given(origin_timeout=90.0)
    assert (settings.origin_connect_timeout, settings.origin_read_timeout) == (10.0, 90.0)


def test_values_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    settings = given(data_dir=None, workers=None, admin_key="")
    assert settings.data_dir == Path("/srv/data/pullzone")
    assert settings.workers == max(1, os.cpu_count() or 1)
    assert settings.admin_key is None


def test_data_dir_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert given(data_dir=Path("~/pz")).data_dir == Path("/home/someone/pz")


@pytest.mark.parametrize(
    ("edge", "api"),
    [
        (Address("127.0.0.1", 9000), Address("127.0.0.1", 9000)),
        (Address("0.0.0.0", 9000), Address("127.0.0.1", 9000)),
        (Address("127.0.0.1", 9000), Address("::", 9000)),
    ],
)
def test_edge_and_api_cannot_share_a_port(edge: Address, api: Address) -> None:
    with pytest.raises(typer.BadParameter, match="cannot both listen on port 9000"):
        given(edge=edge, api=api)


def test_edge_and_api_on_one_port_of_two_hosts() -> None:
    settings = given(edge=Address("127.0.0.2", 9000), api=Address("127.0.0.1", 9000))
    assert (settings.edge_port, settings.api_port) == (9000, 9000)


# --- option values as typed ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("0.0.0.0:80", Address("0.0.0.0", 80)),
        ("[::1]:9001", Address("::1", 9001)),
        (":18081", Address("127.0.0.1", 18081)),
        ("example.org", Address("example.org", 8080)),
        ("[::1]", Address("::1", 8080)),
        ("::1", Address("::1", 8080)),  # an IPv6 address without brackets has no port
        ("example.org:", Address("example.org", 8080)),
    ],
)
def test_addresses(text: str, parsed: Address) -> None:
    assert address(8080)(text) == parsed


@pytest.mark.parametrize("text", ["example.org:http", "[::1]x", "[::1]x:80", "[::1", "::1]"])
def test_addresses_that_are_not_host_port(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not HOST:PORT"):
        address(8080)(text)


def test_a_port_out_of_range() -> None:
    with pytest.raises(typer.BadParameter, match="out of range"):
        address(8080)("127.0.0.1:65536")


def test_address_text() -> None:
    assert [str(Address("::1", 9081)), str(Address("127.0.0.1", 9080))] == [
        "[::1]:9081",
        "127.0.0.1:9080",
    ]


def test_sizes_domains_and_seconds() -> None:
    assert (size("500MiB"), size("1GB")) == (500 * 1024**2, 1000**3)
    assert edge_domain("CDN.Example.com.") == "cdn.example.com"
    assert seconds("4") == 4.0


# --- what typer hands on, flags and environment (parsed only, nothing runs) ---------------------


def test_serve_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    settings = serve_settings(**serve_options(), admin_key=None)
    assert settings.data_dir == Path("/srv/data/pullzone")
    assert (settings.edge_host, settings.edge_port) == ("127.0.0.1", 8080)
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8081)
    assert settings.workers >= 1
    assert settings.worker_connections is None  # derived from RLIMIT_NOFILE, in the worker
    assert settings.max_cache_size == 10 * 1024**3
    assert settings.max_object_size == 1024**3
    assert settings.edge_domain == "localhost"
    assert (settings.origin_connect_timeout, settings.origin_read_timeout) == (10.0, 60.0)
    assert (settings.api_rate, settings.api_burst) == (20.0, 100)


def test_default_worker_connections_leave_room_for_what_connections_open() -> None:
    assert [default_worker_connections(n) for n in (65536, 1024, 128, 10)] == [32736, 480, 32, 1]


def test_serve_flags(tmp_path: Path) -> None:
    options = serve_options(
        "--data-dir", str(tmp_path),
        "--edge", "0.0.0.0:80",
        "--api", "[::1]:9001",
        "--workers", "3",
        "--worker-connections", "900",
        "--max-cache-size", "500MiB",
        "--max-object-size", "64MiB",
        "--edge-domain", "CDN.Example.com.",
        "--origin-timeout", "4",
        "--api-rate-limit", "0.5",
        "--api-burst", "10",
    )  # fmt: skip
    assert options == {
        "data_dir": tmp_path,
        "edge": Address("0.0.0.0", 80),
        "api": Address("::1", 9001),
        "workers": 3,
        "worker_connections": 900,
        "max_cache_size": 500 * 1024**2,
        "max_object_size": 64 * 1024**2,
        "edge_domain": "cdn.example.com",
        "origin_timeout": 4.0,
        "api_rate_limit": 0.5,
        "api_burst": 10,
        "edge_tls": None,
    }


def test_serve_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "PULLZONE_DATA_DIR": str(tmp_path),
        "PULLZONE_EDGE": "127.0.0.2:18080",
        "PULLZONE_API": ":18081",
        "PULLZONE_WORKERS": "2",
        "PULLZONE_WORKER_CONNECTIONS": "50",
        "PULLZONE_MAX_CACHE_SIZE": "1GB",
        "PULLZONE_MAX_OBJECT_SIZE": "100MB",
        "PULLZONE_EDGE_DOMAIN": "edge.test",
        "PULLZONE_ORIGIN_TIMEOUT": "90",
        "PULLZONE_API_RATE_LIMIT": "0",
        "PULLZONE_API_BURST": "1",
        "PULLZONE_EDGE_TLS": "0.0.0.0:443",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert serve_options() == {
        "data_dir": tmp_path,
        "edge": Address("127.0.0.2", 18080),
        "api": Address("127.0.0.1", 18081),
        "workers": 2,
        "worker_connections": 50,
        "max_cache_size": 1000**3,
        "max_object_size": 100 * 1000**2,
        "edge_domain": "edge.test",
        "origin_timeout": 90.0,
        "api_rate_limit": 0.0,
        "api_burst": 1,
        "edge_tls": Address("0.0.0.0", 443),
    }


def acme_options(*args: str) -> dict[str, Any]:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    serve = root.get_command(typer.Context(root), "serve")
    assert serve is not None
    values = serve.make_context("serve", list(args)).params
    return {k: v for k, v in values.items() if k.startswith("acme_")}


def test_acme_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    assert acme_options() == {
        "acme_directory": "", "acme_email": "", "acme_ca_bundle": None, "acme_retry": 60.0,
    }  # fmt: skip
    flags = acme_options(
        "--acme-directory", "https://127.0.0.1:14000/dir",
        "--acme-email", "ops@example.com",
        "--acme-ca-bundle", str(bundle),
        "--acme-retry", "5",
    )  # fmt: skip
    monkeypatch.setenv("PULLZONE_ACME_DIRECTORY", "https://127.0.0.1:14000/dir")
    monkeypatch.setenv("PULLZONE_ACME_EMAIL", "ops@example.com")
    monkeypatch.setenv("PULLZONE_ACME_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("PULLZONE_ACME_RETRY", "5")
    assert acme_options() == flags
    settings = acme_settings(
        given(),
        directory=flags["acme_directory"],
        email=flags["acme_email"],
        ca_bundle=flags["acme_ca_bundle"],
        retry=flags["acme_retry"],
    )
    assert settings.acme_directory == "https://127.0.0.1:14000/dir"
    assert (settings.acme_email, settings.acme_ca_bundle) == ("ops@example.com", str(bundle))
    assert (settings.acme_retry_min, settings.acme_retry_max) == (5.0, 3600.0)
    assert given().acme_directory == ""  # no automatic certificates by default


@pytest.mark.parametrize(
    ("directory", "email", "hint"),
    [("acme.example/dir", "", "--acme-directory"), ("", "not-an-address", "--acme-email")],
)
def test_bad_acme_settings(directory: str, email: str, hint: str) -> None:
    with pytest.raises(typer.BadParameter) as refused:
        acme_settings(given(), directory=directory, email=email, ca_bundle=None)
    assert refused.value.param_hint == f"'{hint}'"


# --- the API rate limit -----------------------------------------------------------------------


def test_rate_values() -> None:
    assert [rate("20"), rate("0.5"), rate(" 0 "), rate(3)] == [20.0, 0.5, 0.0, 3.0]


@pytest.mark.parametrize("bad", ["-1", "fast", "inf", "nan", ""])
def test_bad_rates(bad: str) -> None:
    with pytest.raises(typer.BadParameter, match="requests per second"):
        rate(bad)


@pytest.mark.parametrize(
    "args",
    [
        ["--api-rate-limit", "-1"],
        ["--api-rate-limit", "lots"],
        ["--api-burst", "0"],
        ["--api-burst", "1.5"],
    ],
)
def test_bad_rate_limit_flags(args: list[str]) -> None:
    with pytest.raises(typer.BadParameter):
        serve_options(*args)


def test_bad_rate_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULLZONE_API_RATE_LIMIT", "-5")
    with pytest.raises(typer.BadParameter, match="requests per second"):
        serve_options()


def test_edge_tls_is_an_address_and_never_another_listener_s_port() -> None:
    settings = given(edge_tls=Address("0.0.0.0", 8443))
    assert (settings.edge_tls_host, settings.edge_tls_port) == ("0.0.0.0", 8443)
    assert given().edge_tls_port is None
    with pytest.raises(typer.BadParameter, match="--edge-tls"):
        given(edge_tls=Address("127.0.0.1", 8080))
    with pytest.raises(typer.BadParameter, match="--edge-tls"):
        given(edge_tls=Address("0.0.0.0", 8081))
