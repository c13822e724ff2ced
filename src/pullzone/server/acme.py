"""Automatic certificates (`--acme-directory`): a background loop of the node that owns
ACME orders a certificate for each zone that needs one (certs.renewal.order_due), and
commits what it gets through the event log, as the API commits a change:

- the HTTP-01 challenges (`PutAcmeChallenge`, then `DeleteAcmeChallenge`), which every
  edge of every node answers on its plain listener (edge/decisions.on_challenge);
- on success, the certificate (`PutCertificate`, source "acme": a new one's id is its
  event's sequence; a renewal keeps the id, so the zone needs no change) and the zone
  with `ssl.certid` set and `ssl.warning` cleared (`PutZone`);
- on failure, the zone with the reason in `ssl.warning`, and the next try after a
  backoff (certs.renewal.Backoff: in memory; a restart tries at once).

One order at a time per zone; a few zones at once. Which node owns ACME: a single node
itself; in a cluster, the live API node whose --node-id sorts first (`owner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from pullzone.bus import local
from pullzone.bus.events import DeleteAcmeChallenge, PutAcmeChallenge, PutCertificate, PutZone
from pullzone.certs.acme import AcmeClient, AcmeError, Issued, order_names
from pullzone.certs.model import Certificate
from pullzone.certs.renewal import Backoff, order_due, renewal_time
from pullzone.config import Settings
from pullzone.control.log import EventLog
from pullzone.control.store import now as stamp_now
from pullzone.refusal import Refused
from pullzone.sqlite import connect
from pullzone.zones.model import Zone

log = logging.getLogger("pullzone.acme")

POLL = 1.0  # seconds between looks at the log position (a zone changed: look again)
RESCAN = 300.0  # seconds between full looks when nothing changed and nothing is due
ORDERS_AT_ONCE = 4

A = TypeVar("A")
R = TypeVar("R")


async def in_thread(work: Callable[[A], R], arg: A) -> R:
    """`work(arg)` in a daemon thread of its own. Unlike asyncio.to_thread, a stopping
    node does not wait for an ACME request in flight (a CA may take minutes)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def settle(result: R | None, error: BaseException | None) -> None:
        if future.done():
            return  # cancelled meanwhile
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast(R, result))

    def run() -> None:
        try:
            result = work(arg)
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, None, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="pullzone-acme", daemon=True).start()
    return await future


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


async def always() -> bool:
    return True


class AcmeScheduler:
    def __init__(
        self,
        settings: Settings,
        event_log: EventLog,
        *,
        owner: Callable[[], Awaitable[bool]] = always,
        client: AcmeClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.log = event_log
        self.owner = owner
        self.client = client or AcmeClient(
            settings.acme_directory,
            settings.acme_dir,
            email=settings.acme_email,
            ca_bundle=settings.acme_ca_bundle,
        )
        self.clock = clock
        self.backoff = Backoff(settings.acme_retry_min, settings.acme_retry_max)
        self.conn: sqlite3.Connection = connect(settings.control_db)
        self.running: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(ORDERS_AT_ONCE)
        self._seen_position = -1
        self._next_look = 0.0
        self._cleaned = False

    # -- reading the node's replica --

    def _zones(self) -> list[Zone]:
        rows = self.conn.execute("SELECT record FROM zones ORDER BY id")
        return [Zone.from_record(json.loads(row[0])) for row in rows]

    def _zone(self, zone_id: int) -> Zone | None:
        row = self.conn.execute("SELECT record FROM zones WHERE id = ?", (zone_id,)).fetchone()
        return None if row is None else Zone.from_record(json.loads(row[0]))

    def _cert(self, cert_id: int) -> Certificate | None:
        if not cert_id:
            return None
        row = self.conn.execute(
            "SELECT record FROM certificates WHERE id = ?", (cert_id,)
        ).fetchone()
        return None if row is None else Certificate.from_record(json.loads(row[0]))

    def _names(self, zone: Zone) -> tuple[str, ...]:
        return order_names(zone.hostnames(self.settings.edge_domain))

    # -- the loop --

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("the ACME scheduler's step failed")
            await asyncio.sleep(POLL)

    async def step(self) -> None:
        """Start the orders that are due (when this node owns ACME)."""
        now = self.clock()
        position = local.position(self.conn)
        if position == self._seen_position and now < self._next_look:
            return
        if not await self.owner():
            self._next_look = now + POLL
            return
        if not self._cleaned:
            await self._remove_leftover_challenges()
            self._cleaned = True
        self._seen_position = position
        self._next_look = now + RESCAN
        for zone in self._zones():
            if not zone.ssl.enabled:
                continue
            if zone.id in self.running:
                if self.backoff.failures(zone.id):  # it may be failing now: retry in time
                    self._next_look = min(self._next_look, now + self.backoff.wait(zone.id, now))
                continue  # else its end changes the log: looked at then
            names = self._names(zone)
            cert = self._cert(zone.ssl.certid)
            if order_due(zone, cert, names, now) is None:
                if cert is not None and cert.source == "acme":
                    self._next_look = min(self._next_look, renewal_time(cert))
                continue
            if not self.backoff.ready(zone.id, names, now):
                self._next_look = min(self._next_look, now + self.backoff.wait(zone.id, now))
                continue
            self.running[zone.id] = asyncio.create_task(
                self._order(zone.id, names, zone.ssl.certid)
            )

    async def close(self) -> None:
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def _remove_leftover_challenges(self) -> None:
        """Challenges of orders a stopped process did not finish: no CA asks for them."""
        tokens = [row[0] for row in self.conn.execute("SELECT token FROM acme_challenges")]
        for token in tokens:
            with contextlib.suppress(Refused):
                await self.log.commit(0, DeleteAcmeChallenge(token))

    # -- one order --

    async def _order(self, zone_id: int, names: tuple[str, ...], cert_id: int) -> None:
        try:
            await self._order_once(zone_id, names, cert_id)
        finally:
            self.running.pop(zone_id, None)

    async def _order_once(self, zone_id: int, names: tuple[str, ...], cert_id: int) -> None:
        async with self._slots:
            published: list[str] = []
            try:
                pending = await in_thread(self.client.begin, names)
                for challenge in pending.challenges:
                    await self.log.commit(
                        0, PutAcmeChallenge(challenge.token, challenge.key_authorization)
                    )
                    published.append(challenge.token)
                issued = await in_thread(self.client.finish, pending)
            except AcmeError as exc:
                await self._failed(zone_id, names, cert_id, str(exc))
                return
            except Refused as exc:
                await self._failed(
                    zone_id, names, cert_id, f"the challenge could not be published: {exc}"
                )
                return
            finally:
                for token in published:
                    try:
                        await self.log.commit(0, DeleteAcmeChallenge(token))
                    except Refused as exc:
                        log.warning("ACME challenge not removed (removed at restart): %s", exc)
            try:
                await self._installed(zone_id, names, cert_id, issued)
            except Refused as exc:
                await self._failed(zone_id, names, cert_id, f"storing it failed: {exc}")

    def _still_wanted(self, zone_id: int, cert_id: int) -> Zone | None:
        """The zone, when the certificate ordered is still what it asks for."""
        zone = self._zone(zone_id)
        if zone is None or not zone.ssl.enabled or zone.ssl.certid not in (0, cert_id):
            return None
        return zone

    async def _installed(
        self, zone_id: int, names: tuple[str, ...], cert_id: int, issued: Issued
    ) -> None:
        zone = self._still_wanted(zone_id, cert_id)
        if zone is None:
            log.info("zone %d no longer wants the certificate ordered for it", zone_id)
            return
        stamp = stamp_now()
        current = self._cert(zone.ssl.certid)
        if current is not None:  # a renewal: in place, same id
            cert = dataclasses.replace(
                issued.certificate(current.id, current.name, stamp),
                created_at=current.created_at,
            )
            await self.log.commit(0, PutCertificate(cert))
            new_id = current.id
        else:
            cert = issued.certificate(0, f"{names[0]} (automatic)", stamp)
            new_id = (await self.log.commit(0, PutCertificate(cert))).seq
        self.backoff.succeeded(zone_id)
        log.info(
            "zone %d: certificate %d for %s, valid until %s",
            zone_id,
            new_id,
            ", ".join(names),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(cert.expiry)),
        )
        zone = self._still_wanted(zone_id, cert_id)  # read again: an await came between
        if zone is None or (zone.ssl.certid == new_id and not zone.ssl.warning):
            return
        ssl = dataclasses.replace(zone.ssl, certid=new_id, warning="")
        await self.log.commit(zone_id, PutZone(zone.with_changes(ssl=ssl, updated_at=stamp)))

    async def _failed(
        self, zone_id: int, names: tuple[str, ...], cert_id: int, reason: str
    ) -> None:
        delay = self.backoff.failed(zone_id, names, self.clock())
        self._next_look = min(self._next_look, self.clock() + delay)
        failures = self.backoff.failures(zone_id)
        warning = (
            f"automatic certificate failed ({failures} time{'s' if failures != 1 else ''}, "
            f"next try in {_duration(delay)}): {reason}"
        )
        log.warning("zone %d: %s", zone_id, warning)
        zone = self._still_wanted(zone_id, cert_id)
        if zone is None or zone.ssl.warning == warning:
            return
        ssl = dataclasses.replace(zone.ssl, warning=warning)
        try:
            await self.log.commit(zone_id, PutZone(zone.with_changes(ssl=ssl)))
        except Refused as exc:
            log.warning("zone %d: the warning could not be stored: %s", zone_id, exc)
