"""The API over TLS (`--api-cert`, `--api-key-file`): a real server, a certificate from a
test CA (trustme), and clients that check it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from cli_support import run, said
from server import API_KEY, Server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cert_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("tls")
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = base / "api.pem", base / "api.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    for pem in issued.cert_chain_pems[1:]:
        pem.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return cert, key


@pytest.fixture(scope="module")
def tls_server(
    ca: trustme.CA, cert_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    cert, key = cert_files
    server = Server(
        tmp_path_factory.mktemp("tls-serve") / "data",
        "--api-cert", str(cert),
        "--api-key-file", str(key),
        workers=1,
    )  # fmt: skip
    context = ssl.create_default_context()
    ca.configure_trust(context)
    server.api_url = server.api_url.replace("http://", "https://")
    server.api = httpx.Client(
        base_url=server.api_url, headers={"X-API-Key": API_KEY}, verify=context, timeout=30
    )
    server.start()
    yield server
    server.stop()


def test_the_api_answers_over_tls_only(tls_server: Server) -> None:
    listed = tls_server.api.get("/zones/http/pull")
    assert listed.status_code == 200 and listed.json()["result"] == "success"
    assert "api   https://" in tls_server.output()
    with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port
        httpx.get(tls_server.api_url.replace("https://", "http://") + "/zones/http/pull")
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
        httpx.get(tls_server.api_url + "/zones/http/pull", headers={"X-API-Key": API_KEY})


def test_a_certificate_needs_its_key(cert_files: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = cert_files
    only_cert = run("serve", "--data-dir", str(tmp_path), "--api-cert", str(cert))
    assert only_cert.exit_code == 2
    assert "both --api-cert and --api-key-file" in said(only_cert.stderr)
    other = trustme.CA().issue_cert("127.0.0.1")
    wrong_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(wrong_key))
    mismatch = run(
        "serve",
        "--data-dir",
        str(tmp_path),
        "--api-cert",
        str(cert),
        "--api-key-file",
        str(wrong_key),
    )
    assert mismatch.exit_code == 2
    assert "not a PEM certificate and its key" in said(mismatch.stderr)
