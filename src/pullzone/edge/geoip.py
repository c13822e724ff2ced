"""The client's country, from a MaxMind GeoIP2/GeoLite2 Country database (`--geoip-db`),
opened once per edge worker (memory-mapped: the workers share its pages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from pullzone.edge.client import address_of


class GeoIpError(ValueError):
    """The file is missing or not a MaxMind DB."""


def open_db(path: str | Path) -> maxminddb.Reader:
    try:
        return maxminddb.open_database(str(path))
    except FileNotFoundError:
        raise GeoIpError(f"{path}: no such file") from None
    except (InvalidDatabaseError, OSError, ValueError) as exc:
        raise GeoIpError(f"{path}: not a MaxMind DB (.mmdb) file ({exc})") from None


def check(path: str | Path) -> None:
    """Raises GeoIpError unless `path` opens as a MaxMind DB (before `serve` starts)."""
    open_db(path).close()


class Countries:
    """A client address → its ISO 3166 alpha-2 country code, None when unknown."""

    def __init__(self, path: str | Path) -> None:
        self._reader = open_db(path)

    def __call__(self, client: str) -> str | None:
        address = address_of(client)
        if address is None:
            return None
        try:
            record: Any = self._reader.get(address)
        except ValueError:  # an IPv6 address in an IPv4-only database
            return None
        if not isinstance(record, dict):
            return None
        # GeoIP2 Country: `country`, else the registered country (anonymous proxies, …).
        for key in ("country", "registered_country"):
            place = record.get(key)
            if isinstance(place, dict) and isinstance(place.get("iso_code"), str):
                return str(place["iso_code"]).upper()
        return None
