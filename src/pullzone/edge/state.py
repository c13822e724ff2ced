"""What one edge worker knows of the event log: zones by hostname and each zone's purges.

Every request first compares the node's published sequence (an mmap read) with the one
this worker applied, and catches up when behind, so no request is answered from a view
older than the newest applied purge or zone change. The same read says whether the node
may have missed events (`revalidate_all`): then no cached object is served without
asking the origin; and whether another worker changed stored objects since (the
invalidation generation, bus/signal.py): then what this worker holds in memory is read
again from the index.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass

from pullzone.bus import local
from pullzone.bus.events import (
    ACME_CHALLENGE_DELETE,
    ACME_CHALLENGE_PUT,
    CERT_DELETE,
    CERT_PUT,
    PURGE,
    ZONE_DELETE,
    ZONE_PUT,
    DeleteAcmeChallenge,
    DeleteCertificate,
    Event,
    PutAcmeChallenge,
    PutCertificate,
    PutZone,
)
from pullzone.bus.signal import SeqSignal
from pullzone.cache.index import CacheIndex
from pullzone.certs.model import Certificate
from pullzone.edge.pacing import Pace, pace_of
from pullzone.edge.rules import CountryOf, Rule, rules_of
from pullzone.edge.switches import NO_EDITS, ResponseEdits, response_edits
from pullzone.zones.model import Zone
from pullzone.zones.plan import PurgePlan


@dataclass(slots=True)
class ZoneView:
    zone: Zone
    # Any event at or after this sequence may change what the zone's cached objects
    # mean (a purge, a new cache policy): objects checked before it are checked again.
    changed_seq: int = 0
    soft_all_seq: int = 0
    hard_all_seq: int = 0
    # The zone's access rules (edge/rules.py), compiled with the zone: () when all are off.
    rules: tuple[Rule, ...] = ()
    # What the zone's edge switches add to or remove from its responses (edge/switches.py).
    edits: ResponseEdits = NO_EDITS
    # The zone's bwlimit (edge/pacing.py): None when off.
    pace: Pace | None = None


class EdgeState:
    def __init__(
        self,
        control: sqlite3.Connection,
        index: CacheIndex,
        signal: SeqSignal,
        edge_domain: str,
        country_of: CountryOf | None = None,  # --geoip-db (edge/geoip.py), for geoblock
        shield: bool = False,
    ) -> None:
        # An origin shield's edge (--role shield) answers other edges: responses as stored,
        # for them to cache (ResponseEdits.for_cache), never compressed.
        self.shield = shield
        self._control = control
        self._index = index
        self._country_of = country_of
        self._signal = signal
        self.edge_domain = edge_domain
        self.zones: dict[int, ZoneView] = {}
        self.hosts: dict[str, ZoneView] = {}
        self.certificates: dict[int, Certificate] = {}
        # ACME HTTP-01 challenges being answered, token → key authorization (few, short-lived).
        self.challenges: dict[str, str] = {}
        # Changes whenever a zone or a certificate does: what the TLS listener serves by
        # SNI (edge/tls.py) is worked out again when it differs from what it was built for.
        self.tls_generation = 0
        self._load()

    def _load(self) -> None:
        """Everything from control.db and the cache index, as of the signal read first
        (events applied meanwhile are applied again by `catch_up`: that changes nothing)."""
        self.applied, self.revalidate_all, self.invalidations, self.restores = self._signal.read()
        states = self._index.zone_states()
        self.zones = {}
        for row in self._control.execute("SELECT record FROM zones"):
            zone = Zone.from_record(json.loads(row[0]))
            state = states.get(zone.id)
            view = ZoneView(zone)
            self._set_zone(view, zone)
            if state is not None:
                view.changed_seq = state.last_purge_seq
                view.soft_all_seq = state.soft_all_seq
                view.hard_all_seq = state.hard_all_seq
            self.zones[zone.id] = view
        self.certificates = {}
        for row in self._control.execute("SELECT record FROM certificates"):
            cert = Certificate.from_record(json.loads(row[0]))
            self.certificates[cert.id] = cert
        self.challenges = dict(
            self._control.execute("SELECT token, key_authorization FROM acme_challenges")
        )
        self._rebuild_hosts()

    def catch_up(self) -> bool:
        """Apply the events this worker has not seen; True when stored objects were
        invalidated since the last call (what is in memory must be read again)."""
        target, self.revalidate_all, invalidations, restores = self._signal.read()
        if restores != self.restores:  # the node's replica was replaced (bus/signal.py)
            self._load()
            return True
        if target != self.applied:
            for event in local.read_since(self._control, self.applied, target):
                try:
                    self._apply(event)
                except local.UNAPPLICABLE:
                    continue  # the node quarantined it (server.cache_node); so does the worker
            self.applied = target
        if invalidations == self.invalidations:
            return False
        self.invalidations = invalidations
        return True

    def publish_invalidation(self, generation: int) -> None:
        """Tell every worker of the node (this one included: it has acted already) that
        stored objects changed, before the change is answered to any client."""
        if generation:
            self._signal.publish_invalidation(generation)
            self.invalidations = generation

    def route(self, host: str) -> ZoneView | None:
        return self.hosts.get(host)

    def _apply(self, event: Event) -> None:
        view = self.zones.get(event.zone_id)
        if event.kind == CERT_PUT:
            cert = PutCertificate.from_payload(event.payload).cert
            self.certificates[cert.id] = cert
            self.tls_generation += 1
        elif event.kind == CERT_DELETE:
            self.certificates.pop(DeleteCertificate.from_payload(event.payload).id, None)
            self.tls_generation += 1
        elif event.kind == ZONE_PUT:
            zone = PutZone.from_payload(event.payload).zone
            if view is None:
                view = self.zones[zone.id] = ZoneView(zone)
            self._set_zone(view, zone)
            view.changed_seq = event.seq
            self._rebuild_hosts()
        elif event.kind == ZONE_DELETE:
            self.zones.pop(event.zone_id, None)
            self._rebuild_hosts()
        elif event.kind == ACME_CHALLENGE_PUT:
            challenge = PutAcmeChallenge.from_payload(event.payload)
            self.challenges[challenge.token] = challenge.key_authorization
        elif event.kind == ACME_CHALLENGE_DELETE:
            self.challenges.pop(DeleteAcmeChallenge.from_payload(event.payload).token, None)
        elif event.kind == PURGE and view is not None:
            view.changed_seq = event.seq
            plan = PurgePlan.from_payload(event.payload)
            if plan.whole_zone:
                if plan.delete:
                    view.hard_all_seq = event.seq
                else:
                    view.soft_all_seq = event.seq

    def _set_zone(self, view: ZoneView, zone: Zone) -> None:
        """What the zone's record makes of its view."""
        if self.shield and zone.edge.compression:
            zone = dataclasses.replace(zone, edge=dataclasses.replace(zone.edge, compression=False))
        view.zone = zone
        view.rules = rules_of(zone, self._country_of)
        view.edits = response_edits(zone.edge, for_cache=self.shield)
        view.pace = pace_of(zone.bwlimit)

    def _rebuild_hosts(self) -> None:
        self.tls_generation += 1
        self.hosts = {
            host: view
            for view in self.zones.values()
            for host in view.zone.hostnames(self.edge_domain)
        }
