"""Automatic certificates without a CA: when an order is due (certs.renewal), the backoff,
the names ordered, the HTTP-01 answer before any zone (edge.decisions.on_challenge), the
challenge events as control.db and the edge state apply them, and the scheduler
(server.acme) against a fake ACME client, committing to a single node's log."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pullzone.bus import local
from pullzone.bus.events import (
    ACME_CHALLENGE_DELETE,
    ACME_CHALLENGE_PUT,
    CERT_PUT,
    ZONE_CREATE,
    ZONE_PUT,
    DeleteAcmeChallenge,
    Event,
    PutAcmeChallenge,
    PutCertificate,
)
from pullzone.bus.jetstream import BusUnavailable
from pullzone.bus.signal import SeqSignal
from pullzone.cache.index import CacheIndex
from pullzone.cache.index import create_schema as create_cache_schema
from pullzone.certs.acme import AcmeError, Challenge, Issued, Pending, order_names
from pullzone.certs.model import Certificate
from pullzone.certs.renewal import NAMES, NEW, RENEW, Backoff, order_due, renewal_time, retry_delay
from pullzone.config import Settings
from pullzone.control.log import LocalLog
from pullzone.control.replica import Replica
from pullzone.edge.decisions import ACME_CHALLENGE_PREFIX, on_challenge
from pullzone.edge.decisions import Challenge as Answered
from pullzone.edge.state import EdgeState
from pullzone.server.acme import AcmeScheduler
from pullzone.server.cluster import ClusterNode
from pullzone.sqlite import connect
from pullzone.zones.model import SslPolicy, Zone

DAY = 86400.0


def cert(
    valid_from: float = 0.0, days: float = 90, source: str = "acme", **kw: object
) -> Certificate:
    fields: dict[str, object] = {
        "id": 5, "name": "c", "crt": "", "key": "", "cabundle": "", "domain": "a.test",
        "sans": ("a.test",), "valid_from": valid_from, "expiry": valid_from + days * DAY,
        "source": source, **kw,
    }  # fmt: skip
    return Certificate(**fields)  # type: ignore[arg-type]


def zone(enabled: bool = True, certid: int = 0, cnames: tuple[str, ...] = ()) -> Zone:
    return Zone(7, "z", "a", "http://o.test", cnames=cnames, ssl=SslPolicy(enabled, certid=certid))


# -- when an order is due ----------------------------------------------------------------


def test_renewal_comes_at_two_thirds_of_the_lifetime() -> None:
    assert renewal_time(cert(1000.0, days=90)) == 1000.0 + 60 * DAY
    assert renewal_time(cert(0.0, days=3), renew_at=0.5) == 1.5 * DAY


def test_an_order_is_due_for_a_zone_with_ssl_and_no_certificate() -> None:
    names = ("a.test",)
    assert order_due(zone(), None, names, now=0) == NEW
    assert order_due(zone(enabled=False), None, names, now=0) is None
    assert order_due(zone(), None, (), now=0) is None  # no DNS name to order for


def test_an_acme_certificate_is_renewed_past_two_thirds_and_an_upload_never() -> None:
    names = ("a.test",)
    acme = cert(0.0, days=90)
    assert order_due(zone(certid=5), acme, names, now=60 * DAY - 1) is None
    assert order_due(zone(certid=5), acme, names, now=60 * DAY) == RENEW
    upload = cert(0.0, days=90, source="upload")
    assert order_due(zone(certid=5), upload, names, now=89 * DAY) is None
    assert order_due(zone(certid=5), None, names, now=0) is None  # certid names no cert


def test_a_name_the_certificate_does_not_cover_orders_again() -> None:
    assert order_due(zone(certid=5), cert(), ("a.test", "b.test"), now=DAY) == NAMES


def test_the_retry_delay_doubles_up_to_its_limit() -> None:
    assert [retry_delay(n, 60, 3600) for n in range(1, 9)] == [
        60, 120, 240, 480, 960, 1920, 3600, 3600,
    ]  # fmt: skip


def test_backoff_waits_after_failures_and_forgets_on_success_or_new_names() -> None:
    backoff = Backoff(first=60, limit=3600)
    names = ("a.test",)
    assert backoff.ready(7, names, now=0)
    assert backoff.failed(7, names, now=0) == 60
    assert not backoff.ready(7, names, now=59) and backoff.ready(7, names, now=60)
    assert backoff.failed(7, names, now=60) == 120 and backoff.failures(7) == 2
    assert backoff.wait(7, now=100) == 80
    assert backoff.ready(7, ("a.test", "b.test"), now=61)  # the names changed: at once
    assert backoff.failures(7) == 0
    backoff.failed(7, names, now=0)
    backoff.succeeded(7)
    assert backoff.ready(7, names, now=0) and backoff.failures(7) == 0


def test_the_names_ordered_are_the_dns_names_fqdn_first() -> None:
    hosts = ["www.cdn.test", "IMG.example.com.", "192.0.2.1", "[2001:db8::1]", "www.cdn.test"]
    assert order_names(hosts) == ("www.cdn.test", "img.example.com")


# -- the HTTP-01 answer --------------------------------------------------------------------


def test_a_challenge_being_answered_is_answered_for_get_and_head() -> None:
    challenges = {"tok": "tok.thumb"}
    target = ACME_CHALLENGE_PREFIX + "tok"
    assert on_challenge("GET", target, challenges) == Answered("tok.thumb")
    assert on_challenge("HEAD", target + "?x=1", challenges) == Answered("tok.thumb")


def test_other_challenge_requests_are_routed_as_any_other() -> None:
    challenges = {"tok": "tok.thumb"}
    assert on_challenge("POST", ACME_CHALLENGE_PREFIX + "tok", challenges) is None
    assert on_challenge("GET", ACME_CHALLENGE_PREFIX + "other", challenges) is None
    assert on_challenge("GET", ACME_CHALLENGE_PREFIX + "tok", {}) is None
    assert on_challenge("GET", ACME_CHALLENGE_PREFIX + "tok/x", challenges) is None


def test_challenge_events_are_stored_and_reach_the_edge_state(tmp_path: Path) -> None:
    replica = Replica(connect(tmp_path / "control.db"), "cdn.test")
    cache = connect(tmp_path / "cache.db")
    create_cache_schema(cache)
    signal = SeqSignal(tmp_path / "seq")
    state = EdgeState(replica.conn, CacheIndex(cache), signal, "cdn.test")
    put = replica.apply(Event.of(1, 0, PutAcmeChallenge("tok", "tok.thumb"), 1.0))
    assert put is not None and put.kind == ACME_CHALLENGE_PUT
    signal.publish(1)
    state.catch_up()
    assert state.challenges == {"tok": "tok.thumb"}
    # A worker started now reads what is being answered from control.db.
    assert EdgeState(replica.conn, CacheIndex(cache), signal, "cdn.test").challenges == {
        "tok": "tok.thumb"
    }
    gone = replica.apply(Event.of(2, 0, DeleteAcmeChallenge("tok"), 2.0))
    assert gone is not None and gone.kind == ACME_CHALLENGE_DELETE
    signal.publish(2)
    state.catch_up()
    assert state.challenges == {}
    with pytest.raises(TypeError):
        PutAcmeChallenge.from_payload({"token": 1, "key_authorization": "x"})


# -- the scheduler, with a fake CA ---------------------------------------------------------


def issued(names: tuple[str, ...], days: float = 90) -> Issued:
    ca = trustme.CA()
    now = datetime.datetime.now(datetime.UTC)
    leaf = ca.issue_cert(*names, not_before=now, not_after=now + datetime.timedelta(days=days))
    key = leaf.private_key_pem.bytes().decode()
    return Issued(leaf.cert_chain_pems[0].bytes().decode(), ca.cert_pem.bytes().decode(), key)


class FakeClient:
    def __init__(self) -> None:
        self.fail: str | None = None
        self.begun: list[tuple[str, ...]] = []
        self.seen_challenges: list[dict[str, str]] = []
        self.replica: Replica | None = None
        self.release = asyncio.Event()

    def begin(self, names: tuple[str, ...]) -> Pending:
        self.begun.append(names)
        if self.fail:
            raise AcmeError(self.fail)
        challenges = tuple(Challenge(f"t-{n}", f"t-{n}.thumb") for n in names)
        return Pending(names, challenges, None, None, (), b"")  # type: ignore[arg-type]

    def finish(self, pending: Pending) -> Issued:
        assert self.replica is not None
        rows = self.replica.conn.execute("SELECT token, key_authorization FROM acme_challenges")
        self.seen_challenges.append(dict(rows.fetchall()))
        return issued(pending.names)


@pytest.fixture()
def harness(tmp_path: Path) -> tuple[AcmeScheduler, FakeClient, LocalLog]:
    settings = Settings(data_dir=tmp_path, edge_domain="cdn.test", acme_directory="https://ca")

    async def applied(event: Event) -> None:
        return None

    event_log = LocalLog(settings, applied)
    client = FakeClient()
    client.replica = event_log.replica
    scheduler = AcmeScheduler(settings, event_log, client=client)  # type: ignore[arg-type]
    return scheduler, client, event_log


def add_zone(event_log: LocalLog, alias: str, **ssl: object) -> Zone:
    draft = Zone(0, alias, alias, "http://o.test", ssl=SslPolicy(**ssl))  # type: ignore[arg-type]
    seq = event_log.replica.position + 1
    payload = {"zone": draft.to_record(), "derive_alias": False, "stamp": "2026-01-01 00:00:00"}
    event_log.replica.apply(Event(seq, ZONE_CREATE, 0, payload, 0.0))
    stored = event_log.replica.zones.get(seq)
    assert stored is not None
    return stored


async def settle(scheduler: AcmeScheduler) -> None:
    await scheduler.step()
    while scheduler.running:
        await asyncio.gather(*scheduler.running.values())


async def test_the_scheduler_installs_a_certificate_and_sets_the_certid(
    harness: tuple[AcmeScheduler, FakeClient, LocalLog],
) -> None:
    scheduler, client, event_log = harness
    plain = add_zone(event_log, "plain")
    wanted = add_zone(event_log, "www", enabled=True)
    await settle(scheduler)
    assert client.begun == [("www.cdn.test",)]
    # The challenges were in control.db (so on every edge) while the CA validated.
    assert client.seen_challenges == [{"t-www.cdn.test": "t-www.cdn.test.thumb"}]
    zone = event_log.replica.zones.get(wanted.id)
    assert zone is not None and zone.ssl.certid != 0 and zone.ssl.warning == ""
    row = event_log.replica.conn.execute(
        "SELECT record FROM certificates WHERE id = ?", (zone.ssl.certid,)
    ).fetchone()
    stored = Certificate.from_record(json.loads(row[0]))
    assert stored.source == "acme" and stored.sans == ("www.cdn.test",)
    assert event_log.replica.zones.get(plain.id) == plain
    kinds = [e.kind for e in local.read_since(event_log.replica.conn, wanted.id)]
    assert kinds == [ACME_CHALLENGE_PUT, ACME_CHALLENGE_DELETE, CERT_PUT, ZONE_PUT]
    await settle(scheduler)
    assert len(client.begun) == 1  # nothing due any more


async def test_a_failure_is_the_warning_and_waits_for_the_backoff(
    harness: tuple[AcmeScheduler, FakeClient, LocalLog],
) -> None:
    scheduler, client, event_log = harness
    clock = [1000.0]
    scheduler.clock = lambda: clock[0]
    client.fail = "the ACME directory is unreachable (connection failed)"
    wanted = add_zone(event_log, "www", enabled=True)
    await settle(scheduler)
    zone = event_log.replica.zones.get(wanted.id)
    assert zone is not None and zone.ssl.certid == 0
    assert zone.ssl.warning == (
        "automatic certificate failed (1 time, next try in 60 s): "
        "the ACME directory is unreachable (connection failed)"
    )
    clock[0] += 30
    await settle(scheduler)
    assert len(client.begun) == 1  # within the backoff: not again
    clock[0] += 31
    await settle(scheduler)
    assert len(client.begun) == 2
    zone = event_log.replica.zones.get(wanted.id)
    assert zone is not None and "(2 times, next try in 2 min)" in zone.ssl.warning
    client.fail = None
    clock[0] += 121
    await settle(scheduler)
    zone = event_log.replica.zones.get(wanted.id)
    assert zone is not None and zone.ssl.certid != 0 and zone.ssl.warning == ""


async def test_a_renewal_replaces_the_certificate_in_place(
    harness: tuple[AcmeScheduler, FakeClient, LocalLog],
) -> None:
    scheduler, client, event_log = harness
    wanted = add_zone(event_log, "www", enabled=True)
    await settle(scheduler)
    zone = event_log.replica.zones.get(wanted.id)
    assert zone is not None
    cert_id = zone.ssl.certid
    first = json.loads(
        event_log.replica.conn.execute(
            "SELECT record FROM certificates WHERE id = ?", (cert_id,)
        ).fetchone()[0]
    )
    leaf = x509.load_pem_x509_certificate(first["crt"].encode())
    lifetime = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds()
    scheduler.clock = lambda: first["valid_from"] + lifetime * 2 / 3 + 1
    await settle(scheduler)
    assert len(client.begun) == 2
    row = event_log.replica.conn.execute(
        "SELECT record FROM certificates WHERE id = ?", (cert_id,)
    ).fetchone()
    renewed = json.loads(row[0])
    assert renewed["crt"] != first["crt"] and renewed["created_at"] == first["created_at"]
    assert event_log.replica.zones.get(wanted.id) == zone  # the zone needs no change
    last = local.read_since(event_log.replica.conn, event_log.replica.position - 1)
    assert [e.kind for e in last] == [CERT_PUT]
    assert PutCertificate.from_payload(last[0].payload).cert.id == cert_id


async def test_one_order_at_a_time_per_zone(
    harness: tuple[AcmeScheduler, FakeClient, LocalLog],
) -> None:
    scheduler, client, event_log = harness
    started = asyncio.Event()
    release = asyncio.Event()
    original = scheduler._order_once

    async def slow(zone_id: int, names: tuple[str, ...], cert_id: int) -> None:
        started.set()
        await release.wait()
        await original(zone_id, names, cert_id)

    scheduler._order_once = slow  # type: ignore[method-assign]
    add_zone(event_log, "www", enabled=True)
    await scheduler.step()
    await started.wait()
    scheduler._seen_position = -1  # look again at once, while the order runs
    await scheduler.step()
    assert len(scheduler.running) == 1
    release.set()
    await asyncio.gather(*scheduler.running.values())
    assert client.begun == [("www.cdn.test",)]


def test_an_issued_chain_becomes_an_acme_certificate_record() -> None:
    record = issued(("a.test", "b.test"), days=30).certificate(0, "a.test (automatic)", "now")
    assert record.source == "acme" and record.id == 0
    assert record.sans == ("a.test", "b.test") and record.domain == "a.test"
    assert 29 * DAY < record.expiry - record.valid_from <= 31 * DAY
    serialization.load_pem_private_key(record.key.encode(), password=None)
    assert dataclasses.replace(record, id=3).id == 3


# -- who orders in a cluster -----------------------------------------------------------------


class FakeBus:
    def __init__(self, nodes: list[dict[str, object]] | None) -> None:
        self._nodes = nodes

    async def nodes(self) -> list[dict[str, object]]:
        if self._nodes is None:
            raise BusUnavailable("cut off")
        return self._nodes


@pytest.mark.parametrize(
    ("me", "registry", "owns"),
    [
        ("api-1", [{"node": "api-2", "role": "api"}, {"node": "edge-0", "role": "edge"}], True),
        ("api-2", [{"node": "api-1", "role": "api"}, {"node": "api-2", "role": "api"}], False),
        ("b", [{"node": "a", "role": "all"}], False),
        ("api-1", [], True),  # not yet in the registry itself: alone
        ("api-1", None, False),  # cut off from the bus: nothing could be committed
    ],
)
async def test_the_api_node_whose_id_sorts_first_orders(
    tmp_path: Path, me: str, registry: list[dict[str, object]] | None, owns: bool
) -> None:
    settings = Settings(data_dir=tmp_path, cluster=("nats://x",), node_id=me, role="api")
    node = ClusterNode(settings, FakeBus(registry), None)  # type: ignore[arg-type]
    assert await node.acme_owner() is owns
