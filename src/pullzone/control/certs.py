"""Account certificates in control.db (written by the replica only) as the API reads and
answers them, and what zones' ssl blocks may name."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pullzone.certs.check import Checked
from pullzone.certs.model import REDACTED, Certificate
from pullzone.certs.names import covers
from pullzone.control.errors import BadRequest
from pullzone.zones.model import Zone


def get(conn: sqlite3.Connection, cert_id: int) -> Certificate | None:
    row = conn.execute("SELECT record FROM certificates WHERE id = ?", (cert_id,)).fetchone()
    return None if row is None else Certificate.from_record(json.loads(row[0]))


def all_certs(conn: sqlite3.Connection) -> list[Certificate]:
    rows = conn.execute("SELECT record FROM certificates ORDER BY id")
    return [Certificate.from_record(json.loads(row[0])) for row in rows]


def users(zones: Iterable[Zone], cert_id: int) -> list[int]:
    """The zones whose ssl block names the certificate."""
    return [zone.id for zone in zones if zone.ssl.certid == cert_id]


def _date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def default_name(checked: Checked) -> str:
    """5centscdn names an unnamed upload after its common name and expiry."""
    return f"{checked.domain} {_date(checked.expiry)}"


def to_api(cert: Certificate, zone_ids: list[int]) -> dict[str, Any]:
    """The certificate as the API shows it: never its key."""
    return {
        "id": cert.id,
        "name": cert.name,
        "crt": cert.crt,
        "key": REDACTED,
        "cabundle": cert.cabundle,
        "domain": cert.domain,
        "sans": list(cert.sans),
        "expiry": _date(cert.expiry),
        "validFrom": _date(cert.valid_from),
        "expired": cert.expiry < time.time(),
        "installs": len(zone_ids),
        "zones": zone_ids,
        "source": cert.source,
        "created_at": cert.created_at,
        "updated_at": cert.updated_at,
    }


def cert_names(cert: Certificate) -> tuple[str, ...]:
    return cert.sans or (cert.domain,)


def uncovered(cert: Certificate, hostnames: Iterable[str]) -> list[str]:
    """The hostnames the certificate is not valid for (RFC 6125 §6.4)."""
    names = cert_names(cert)
    return [host for host in hostnames if not covers(names, host)]


def check_zone_ssl(conn: sqlite3.Connection, zone: Zone, acme_directory: str) -> None:
    """A zone's ssl block may be stored: its `certid` names a certificate, and HTTPS that
    is switched on has a certificate or a way to obtain one."""
    ssl = zone.ssl
    if ssl.certid and get(conn, ssl.certid) is None:
        raise BadRequest(
            f"ssl.certid: no certificate {ssl.certid}; upload one with POST "
            "/v2/account/ssl/new and list them with GET /v2/account/ssl (0: none)"
        )
    if ssl.enabled and not ssl.certid and not acme_directory:
        raise BadRequest(
            "ssl.enabled: HTTPS needs a certificate: set ssl.certid to an account "
            "certificate's id (POST /v2/account/ssl/new, or crt and key on POST "
            "…/{zoneid}/ssl), or start serve with --acme-directory to obtain one automatically"
        )


def zone_warnings(conn: sqlite3.Connection, zone: Zone, edge_domain: str) -> list[str] | None:
    """What may not work as the zone says: its certificate not covering some of its
    hostnames (HTTPS visitors to those get a failed handshake)."""
    if not zone.ssl.certid:
        return None
    cert = get(conn, zone.ssl.certid)
    if cert is None:
        return None
    missing = uncovered(cert, zone.hostnames(edge_domain))
    if not missing:
        return None
    return [
        f"ssl: certificate {cert.id} ({cert.domain}) does not cover {', '.join(missing)}: "
        "HTTPS to those names fails; upload a certificate for them"
    ]
