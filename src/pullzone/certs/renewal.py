"""When an automatic certificate is ordered: pure functions of the zone, its certificate
and the time (passed in), and the backoff of failed orders."""

from __future__ import annotations

from dataclasses import dataclass, field

from pullzone import defaults
from pullzone.certs.model import Certificate
from pullzone.zones.model import Zone

NEW = "new"  # ssl enabled, no certificate yet
RENEW = "renew"  # past `renew_at` of its lifetime
NAMES = "names"  # the zone has names the certificate does not cover


def renewal_time(cert: Certificate, renew_at: float = defaults.ACME_RENEW_AT) -> float:
    """When `cert` is renewed: once `renew_at` of its lifetime has passed."""
    return cert.valid_from + (cert.expiry - cert.valid_from) * renew_at


def order_due(
    zone: Zone,
    cert: Certificate | None,
    names: tuple[str, ...],
    now: float,
    renew_at: float = defaults.ACME_RENEW_AT,
) -> str | None:
    """Why a certificate for `names` (the zone's, `certs.acme.order_names`) is to be
    ordered for `zone` at `now`, or None. `cert` is the one its `ssl.certid` names.

    Only zones with ssl enabled, and only certificates pullzone obtained itself: an
    uploaded certificate is the operator's to renew."""
    if not zone.ssl.enabled or not names:
        return None
    if zone.ssl.certid == 0:
        return NEW
    if cert is None or cert.source != "acme":
        return None
    if now >= renewal_time(cert, renew_at):
        return RENEW
    if not set(names) <= set(cert.sans):
        return NAMES
    return None


def retry_delay(
    failures: int, first: float = defaults.ACME_RETRY_MIN, limit: float = defaults.ACME_RETRY_MAX
) -> float:
    """Seconds to wait after the `failures`-th failure in a row: `first`, doubling, at
    most `limit`."""
    return float(min(limit, first * 2 ** max(0, failures - 1)))


@dataclass(slots=True)
class _Failing:
    failures: int
    retry_at: float
    names: tuple[str, ...]


@dataclass(slots=True)
class Backoff:
    """Failed orders by zone, in memory: a restart tries every zone again at once. A
    change of the zone's names is tried at once too (the failure may have been a name)."""

    first: float = defaults.ACME_RETRY_MIN
    limit: float = defaults.ACME_RETRY_MAX
    _failing: dict[int, _Failing] = field(default_factory=dict)

    def ready(self, zone_id: int, names: tuple[str, ...], now: float) -> bool:
        failing = self._failing.get(zone_id)
        if failing is None:
            return True
        if failing.names != names:
            del self._failing[zone_id]
            return True
        return now >= failing.retry_at

    def failed(self, zone_id: int, names: tuple[str, ...], now: float) -> float:
        """Count a failure; returns the seconds until the next try."""
        failing = self._failing.get(zone_id)
        failures = 1 if failing is None or failing.names != names else failing.failures + 1
        delay = retry_delay(failures, self.first, self.limit)
        self._failing[zone_id] = _Failing(failures, now + delay, names)
        return delay

    def wait(self, zone_id: int, now: float) -> float:
        """Seconds until the zone's next try (0: now)."""
        failing = self._failing.get(zone_id)
        return 0.0 if failing is None else max(0.0, failing.retry_at - now)

    def succeeded(self, zone_id: int) -> None:
        self._failing.pop(zone_id, None)

    def failures(self, zone_id: int) -> int:
        failing = self._failing.get(zone_id)
        return 0 if failing is None else failing.failures
