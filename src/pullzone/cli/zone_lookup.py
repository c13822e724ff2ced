"""The ZONE argument: a zone id, alias, hostname or name, looked up into the zone's id."""

from __future__ import annotations

from typing import Annotated

import typer

from pullzone.cli.output import fail
from pullzone.client import Client, Zone

ZoneRef = Annotated[
    str, typer.Argument(metavar="ZONE", help="Zone id, alias, hostname (fqdn or cname) or name.")
]


def _as_id(ref: str) -> int | None:
    return int(ref) if ref.isascii() and ref.isdigit() and int(ref) > 0 else None


def find_zone_id(client: Client, ref: str) -> int:
    """A zone id from an id, an alias, one of the zone's hostnames, or a unique name."""
    return find_zone_ids(client, [ref])[0]


def find_zone_ids(client: Client, refs: list[str]) -> list[int]:
    """`find_zone_id` of each ref; the zones are listed (once) only when a ref is no id."""
    zones: list[Zone] | None = None
    ids = []
    for ref in refs:
        zone_id = _as_id(ref)
        if zone_id is None:
            if zones is None:
                zones = client.zones.list()
            zone_id = _only_match(zones, ref)
        ids.append(zone_id)
    return ids


def _only_match(zones: list[Zone], ref: str) -> int:
    hits = matching_zones(zones, ref)
    if len(hits) == 1:
        return hits[0].id
    if not hits:
        fail(f"no zone has the id, alias, hostname or name {ref!r} (see `pullzone zones list`)")
    ids = ", ".join(str(z.id) for z in hits)
    fail(f"several zones match {ref!r} (ids {ids}): give the id")


def matching_zones(zones: list[Zone], ref: str) -> list[Zone]:
    """The zones whose alias, fqdn or a cname is `ref`; else those named `ref`."""
    needle = ref.strip().lower().rstrip(".")
    hits = [z for z in zones if needle in _hostnames(z)]
    return hits or [z for z in zones if z.name == ref]


def _hostnames(zone: Zone) -> set[str]:
    names = {zone.alias, zone.fqdn, *(c.strip() for c in zone.cnames)}
    return {n.lower() for n in names if n}
