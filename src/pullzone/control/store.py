"""Zones in control.db: what the node's event log says they are.

`zones` holds each zone as its JSON record (`Zone.to_record()`, what the edge reads too);
`zone_hosts` maps every hostname a zone answers for (its fqdn and its cnames) to the zone,
so that no hostname can ever route to two zones. Only the replica (`control.replica`)
writes, each change in the transaction that stores its event: the log and the zones can
never disagree, whatever crashes when.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
from datetime import UTC, datetime

from pullzone.refusal import Reason, Refused
from pullzone.sqlite import transaction
from pullzone.zones.model import Zone

log = logging.getLogger("pullzone.api")

SCHEMA = """
CREATE TABLE IF NOT EXISTS zones (
    id     INTEGER PRIMARY KEY,  -- the sequence of the event that created it: never reused
    alias  TEXT    NOT NULL UNIQUE,
    record TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS zone_hosts (
    host    TEXT    PRIMARY KEY,
    zone_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS zone_hosts_zone ON zone_hosts (zone_id);
CREATE TABLE IF NOT EXISTS certificates (
    id     INTEGER PRIMARY KEY,  -- the sequence of the event that created it
    record TEXT    NOT NULL      -- certs.model.Certificate, the private key included
);
CREATE TABLE IF NOT EXISTS acme_challenges (
    token             TEXT PRIMARY KEY,  -- what the CA asks for (RFC 8555 §8.3)
    key_authorization TEXT NOT NULL      -- what the edge answers
);
"""

MAX_ALIAS_TRIES = 1000


def now() -> str:
    """UTC, as 5centscdn writes it: `YYYY-MM-DD HH:MM:SS`."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _record(zone: Zone) -> str:
    return json.dumps(zone.to_record(), separators=(",", ":"))


class ZoneStore:
    def __init__(self, conn: sqlite3.Connection, edge_domain: str) -> None:
        self.conn = conn
        self.edge_domain = edge_domain.lower()
        self.create_schema()

    def create_schema(self) -> None:
        self.conn.executescript(SCHEMA)
        self._rebuild_hosts()

    def _rebuild_hosts(self) -> None:
        """Fqdns depend on the edge domain, which may change between starts."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM zone_hosts")
            for zone in self._all():
                for host in zone.hostnames(self.edge_domain):
                    cur = self.conn.execute(
                        "INSERT OR IGNORE INTO zone_hosts (host, zone_id) VALUES (?, ?)",
                        (host, zone.id),
                    )
                    if cur.rowcount == 0:
                        log.warning("hostname %s of zone %s is also another zone's", host, zone.id)

    # --- reads -------------------------------------------------------------------------

    def get(self, zone_id: int) -> Zone | None:
        row = self.conn.execute("SELECT record FROM zones WHERE id = ?", (zone_id,)).fetchone()
        return None if row is None else Zone.from_record(json.loads(row[0]))

    def _all(self) -> builtins.list[Zone]:
        rows = self.conn.execute("SELECT record FROM zones ORDER BY id")
        return [Zone.from_record(json.loads(row[0])) for row in rows]

    def list(self) -> builtins.list[Zone]:
        """Every zone, oldest first."""
        return self._all()

    # --- writes: the replica applies events through these, inside its transaction ----

    def create(self, zone_id: int, draft: Zone, *, derive_alias: bool, stamp: str) -> Zone:
        """Store a new zone under `zone_id`. `derive_alias`: `draft.alias` is a base to make
        unique (`site`, `site-2`, …); otherwise it is the alias asked for, refused when
        taken."""
        if derive_alias:
            alias = self._free_alias(draft.alias)
        else:
            alias = draft.alias
            self._check_alias(alias, zone_id=None)
        zone = draft.with_changes(id=zone_id, alias=alias, created_at=stamp, updated_at=stamp)
        self.conn.execute(
            "INSERT INTO zones (id, alias, record) VALUES (?, ?, ?)",
            (zone.id, zone.alias, _record(zone)),
        )
        self._claim_hosts(zone)
        return zone

    def replace(self, zone: Zone) -> Zone:
        """Store a changed zone (keeping when it was created)."""
        current = self.get(zone.id)
        if current is None:
            raise Refused(Reason.NOT_FOUND, f"zone {zone.id} not found")
        if zone.alias != current.alias:
            self._check_alias(zone.alias, zone_id=zone.id)
        zone = zone.with_changes(created_at=current.created_at)
        self.conn.execute(
            "UPDATE zones SET alias = ?, record = ? WHERE id = ?",
            (zone.alias, _record(zone), zone.id),
        )
        self._claim_hosts(zone)
        return zone

    def delete(self, zone_id: int) -> None:
        cur = self.conn.execute("DELETE FROM zones WHERE id = ?", (zone_id,))
        if cur.rowcount == 0:
            raise Refused(Reason.NOT_FOUND, f"zone {zone_id} not found")
        self.conn.execute("DELETE FROM zone_hosts WHERE zone_id = ?", (zone_id,))

    # --- hostnames ---------------------------------------------------------------------

    def _owner(self, host: str) -> int | None:
        row = self.conn.execute("SELECT zone_id FROM zone_hosts WHERE host = ?", (host,)).fetchone()
        return None if row is None else int(row[0])

    def _alias_owner(self, alias: str) -> int | None:
        row = self.conn.execute("SELECT id FROM zones WHERE alias = ?", (alias,)).fetchone()
        return None if row is None else int(row[0])

    def _check_alias(self, alias: str, zone_id: int | None) -> None:
        owner = self._alias_owner(alias)
        if owner is not None and owner != zone_id:
            raise Refused(
                Reason.CONFLICT,
                f"alias {alias!r} is taken by zone {owner}: choose another alias, or leave "
                "alias out on create to derive a free one from the name",
            )
        fqdn = f"{alias}.{self.edge_domain}"
        owner = self._owner(fqdn)
        if owner is not None and owner != zone_id:
            raise Refused(
                Reason.CONFLICT,
                f"alias {alias!r} would give hostname {fqdn}, which zone {owner} uses as a "
                "cname: choose another alias",
            )

    def _free_alias(self, base: str) -> str:
        for n in range(1, MAX_ALIAS_TRIES + 1):
            suffix = "" if n == 1 else f"-{n}"
            alias = base[: 63 - len(suffix)].rstrip("-") + suffix
            fqdn = f"{alias}.{self.edge_domain}"
            if self._alias_owner(alias) is None and self._owner(fqdn) is None:
                return alias
        raise Refused(Reason.CONFLICT, f"no free alias derived from {base!r}: give an alias")

    def _claim_hosts(self, zone: Zone) -> None:
        """Point every hostname of `zone` at it; refuse one another zone has."""
        fqdn = zone.fqdn(self.edge_domain)
        if fqdn in zone.cnames:
            raise Refused(
                Reason.INVALID, f"cname {fqdn} is the zone's own fqdn: leave it out of cnames"
            )
        self.conn.execute("DELETE FROM zone_hosts WHERE zone_id = ?", (zone.id,))
        for host in zone.hostnames(self.edge_domain):
            owner = self._owner(host)
            if owner is not None:
                what = f"alias {zone.alias!r} gives hostname" if host == fqdn else "cname"
                raise Refused(
                    Reason.CONFLICT,
                    f"{what} {host} is already used by zone {owner}: a hostname can belong "
                    "to one zone only",
                )
            self.conn.execute(
                "INSERT INTO zone_hosts (host, zone_id) VALUES (?, ?)", (host, zone.id)
            )
