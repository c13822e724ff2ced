"""Automatic certificates against a real ACME CA (Debian's pebble, tests/pebble.py): a zone
with ssl enabled and no certid gets one, validated over HTTP-01 on the edge's plain port
for each of its names; failures show in ssl.warning and are retried; a certificate past
two thirds of its life is renewed in place."""

from __future__ import annotations

import json
import re
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from nats_servers import NatsServer
from origin import Origin
from pebble import Pebble, pebble_binaries
from server import Server, until

from pullzone.bus.events import DeleteAcmeChallenge, PutAcmeChallenge
from pullzone.certs.model import Certificate

pytestmark = pytest.mark.skipif(
    pebble_binaries() is None, reason="pebble not installed (apt-get install pebble)"
)

EDGE_DOMAIN = "cdn.test"
BLOCKED = "blocked.test"  # pebble refuses to issue for names under it


def acme_node(tmp: Path, *, validity: int | None = None) -> tuple[Server, Pebble]:
    server = Server(
        tmp / "data",
        "--edge-domain", EDGE_DOMAIN,
        "--acme-retry", "1",
        "--acme-email", "ops@example.com",
        workers=1,
    )  # fmt: skip
    pebble = Pebble(tmp / "pebble", server.edge_port, validity=validity, blocklist=(BLOCKED,))
    server.args += ["--acme-directory", pebble.directory, "--acme-ca-bundle", str(pebble.ca_bundle)]
    pebble.start()
    try:
        server.start()
    except BaseException:
        pebble.stop()
        raise
    return server, pebble


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Pebble]]:
    server, pebble = acme_node(tmp_path_factory.mktemp("acme"))
    yield server, pebble
    server.stop()
    pebble.stop()


def stored_cert(server: Server, cert_id: int) -> Certificate:
    with sqlite3.connect(server.data_dir / "control.db") as conn:
        row = conn.execute("SELECT record FROM certificates WHERE id = ?", (cert_id,)).fetchone()
    assert row is not None, cert_id
    return Certificate.from_record(json.loads(row[0]))


def challenges_left(server: Server) -> int:
    with sqlite3.connect(server.data_dir / "control.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM acme_challenges").fetchone()[0])


def verify_chain(cert: Certificate, root_pem: bytes) -> x509.Certificate:
    """The leaf, once each certificate of the chain is checked as issued by the next."""
    leaf = x509.load_pem_x509_certificate(cert.crt.encode())
    chain = [leaf, *x509.load_pem_x509_certificates(cert.cabundle.encode())]
    root = x509.load_pem_x509_certificate(root_pem)
    for child, parent in zip(chain, [*chain[1:], root], strict=True):
        child.verify_directly_issued_by(parent)
    return leaf


def wait_ssl(server: Server, zone_id: int, done: object, timeout: float = 60) -> dict[str, object]:
    assert callable(done)
    ssl = until(lambda: server.zone_ssl(zone_id), done, timeout)
    assert done(ssl), (ssl, server.output()[-3000:])
    return ssl


def test_a_zone_with_ssl_and_no_certid_gets_a_certificate(
    node: tuple[Server, Pebble], origin: Origin
) -> None:
    server, pebble = node
    zone = server.create_zone(origin.url, alias="www", cnames="img.example.com")
    assert server.zone_ssl(zone["id"]) == {
        "enabled": "N", "http2": "N", "redirect": "N", "mode": "default", "certid": 0,
        "warning": "",
    }  # fmt: skip
    server.set_ssl(zone["id"], enabled=True)

    ssl = wait_ssl(server, zone["id"], lambda s: s["certid"] != 0)
    assert ssl["enabled"] == "Y"
    assert ssl["warning"] == ""
    cert = stored_cert(server, int(str(ssl["certid"])))
    assert cert.source == "acme"
    assert set(cert.sans) == {"www.cdn.test", "img.example.com"}
    leaf = verify_chain(cert, pebble.root())
    key = serialization.load_pem_private_key(cert.key.encode(), password=None)
    assert key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == leaf.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert cert.expiry == leaf.not_valid_after_utc.timestamp()

    # The challenges were answered by the edge, never by the origin, and are gone now.
    assert not [p for p in origin.seen if p.startswith("/.well-known/acme-challenge/")]
    assert until(lambda: challenges_left(server), lambda n: n == 0) == 0
    account_key = server.data_dir / "acme" / "account.key"
    assert stat.S_IMODE(account_key.stat().st_mode) == 0o600


def test_the_edge_answers_a_challenge_for_any_host_before_any_zone(
    node: tuple[Server, Pebble], origin: Origin
) -> None:
    server, _ = node
    zone = server.create_zone(origin.url, alias="probe")
    server.commit(0, PutAcmeChallenge("tok-123", "tok-123.thumbprint"))
    server.create_zone(origin.url, alias="nudge")  # the node's next event: workers catch up
    path = "/.well-known/acme-challenge/tok-123"
    for host in ("probe.cdn.test", "nobody.example"):
        response = server.get(host, path)
        assert response.status_code == 200, (host, response.text)
        assert response.text == "tok-123.thumbprint"
        assert response.headers["cache-control"] == "no-store"
    assert server.edge.head(path, headers={"Host": "nobody.example"}).status_code == 200
    # Anything else under the prefix is routed as any request is: to the zone's origin,
    # or a 404 for a host of no zone.
    assert server.get("nobody.example", "/.well-known/acme-challenge/other").status_code == 404
    server.get("probe.cdn.test", "/.well-known/acme-challenge/other")
    assert origin.count("/.well-known/acme-challenge/other") == 1
    assert origin.count(path) == 0
    server.commit(0, DeleteAcmeChallenge("tok-123"))
    server.purge(zone["id"])  # the next event again
    assert server.get("nobody.example", path).status_code == 404


def test_a_failing_order_shows_in_the_warning_and_is_retried(
    node: tuple[Server, Pebble], origin: Origin
) -> None:
    server, _ = node
    zone = server.create_zone(origin.url, alias="refused", cnames=f"www.{BLOCKED}")
    server.set_ssl(zone["id"], enabled=True)

    ssl = wait_ssl(server, zone["id"], lambda s: s["warning"] != "")
    assert ssl["certid"] == 0
    warning = str(ssl["warning"])
    assert re.match(r"automatic certificate failed \(\d+ times?, next try in \d+ s\): ", warning)
    assert "rejectedIdentifier" in warning and BLOCKED in warning, warning
    # Tried again, with backoff: the count goes up.
    wait_ssl(server, zone["id"], lambda s: "(2 times" in str(s["warning"]))

    # Once the name CA refuses is gone, the next order succeeds and the warning goes.
    response = server.api.post(f"/zones/http/pull/{zone['id']}", json={"cnames": ""})
    assert response.status_code == 200, response.text
    ssl = wait_ssl(server, zone["id"], lambda s: s["certid"] != 0)
    assert ssl["warning"] == ""
    assert stored_cert(server, int(str(ssl["certid"]))).sans == ("refused.cdn.test",)


def test_an_unreachable_ca_shows_in_the_warning_then_the_order_succeeds(
    node: tuple[Server, Pebble], origin: Origin
) -> None:
    server, pebble = node
    pebble.stop_pebble()
    try:
        zone = server.create_zone(origin.url, alias="later")
        server.set_ssl(zone["id"], enabled=True)
        ssl = wait_ssl(server, zone["id"], lambda s: s["warning"] != "")
        assert "the ACME directory is unreachable" in str(ssl["warning"]), ssl
    finally:
        pebble.start_pebble()
    ssl = wait_ssl(server, zone["id"], lambda s: s["certid"] != 0)
    assert ssl["warning"] == ""


def test_a_certificate_past_two_thirds_of_its_life_is_renewed_in_place(
    tmp_path: Path, origin: Origin
) -> None:
    server, pebble = acme_node(tmp_path, validity=15)  # renewed 10 s after it was issued
    try:
        zone = server.create_zone(origin.url, alias="short")
        server.set_ssl(zone["id"], enabled=True)
        ssl = wait_ssl(server, zone["id"], lambda s: s["certid"] != 0)
        cert_id = int(str(ssl["certid"]))
        first = stored_cert(server, cert_id)
        assert first.expiry - first.valid_from <= 16

        renewed = until(
            lambda: stored_cert(server, cert_id), lambda c: c.crt != first.crt, timeout=40
        )
        assert renewed.crt != first.crt, server.output()[-3000:]
        assert renewed.id == cert_id and renewed.created_at == first.created_at
        assert renewed.expiry > first.expiry
        verify_chain(renewed, pebble.root())
        assert server.zone_ssl(zone["id"])["certid"] == cert_id  # the zone did not change
    finally:
        server.stop()
        pebble.stop()


def test_in_a_cluster_the_api_node_orders_and_the_edge_node_answers_the_challenges(
    tmp_path: Path, origin: Origin
) -> None:
    """The CA connects to the edge node; the order is made by the API node, which has no
    edge: the challenges reach the edge through the stream."""
    nats = NatsServer(tmp_path, "nats").start()
    cluster = ("--cluster", nats.url, "--edge-domain", EDGE_DOMAIN)
    edge = Server(tmp_path / "edge" / "data", *cluster, "--node-id", "edge-1", role="edge",
                  workers=1)  # fmt: skip
    pebble = Pebble(tmp_path / "pebble", edge.edge_port)
    api = Server(
        tmp_path / "api" / "data", *cluster, "--node-id", "api-1",
        "--acme-directory", pebble.directory, "--acme-ca-bundle", str(pebble.ca_bundle),
        "--acme-retry", "1",
        role="api", workers=1,
    )  # fmt: skip
    pebble.start()
    try:
        api.start()
        edge.start()
        zone = api.create_zone(origin.url, alias="clustered", cnames="cdn.example.net")
        api.set_ssl(zone["id"], enabled=True)
        ssl = wait_ssl(api, zone["id"], lambda s: s["certid"] != 0)
        assert ssl["warning"] == ""
        cert = stored_cert(api, int(str(ssl["certid"])))
        assert set(cert.sans) == {"clustered.cdn.test", "cdn.example.net"}
        verify_chain(cert, pebble.root())
        # The edge node has the certificate and the zone's certid too (its own control.db).
        stored = until(
            lambda: edge.zone_ssl_stored(zone["id"]), lambda s: s is not None and s["certid"] != 0
        )
        assert stored is not None and stored["certid"] == ssl["certid"]
        assert stored_cert(edge, int(str(ssl["certid"]))).crt == cert.crt
    finally:
        api.stop()
        edge.stop()
        pebble.stop()
        nats.stop()
