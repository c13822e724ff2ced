"""The zone's `edge` switches that change responses and origin requests (docs/zones.md,
Blocks): cors, disposition, stripcookie; and when a backup origin is asked. Pure functions
over the zone's records.

What a zone adds to its responses is worked out once per zone (edge/state.py `ZoneView`)
into a `ResponseEdits`; a stored object's head is prebuilt with it (edge/entry.py), so a
HIT pays nothing for these switches, on or off.
"""

from __future__ import annotations

from dataclasses import dataclass

from pullzone.spec.headers import HeaderMap
from pullzone.zones.blocks import EdgeOptions

CORS_ORIGIN = ("Access-Control-Allow-Origin", "*")
ATTACHMENT = ("Content-Disposition", "attachment")
# How long a browser may reuse a preflight's answer (Fetch standard, CORS protocol).
PREFLIGHT_MAX_AGE = "86400"
PREFLIGHT_METHODS = "GET, HEAD, OPTIONS"


@dataclass(frozen=True, slots=True)
class ResponseEdits:
    """Fields every response of the zone carries (in place of the origin's own of the same
    names), and origin fields never passed on (lower-case names). `for_cache`: the
    responses are for another cache, an edge asking its origin shield: they carry the
    origin's fields as stored, the ones for caches included (writer.client_headers)."""

    added: tuple[tuple[str, str], ...] = ()
    removed: frozenset[str] = frozenset()
    for_cache: bool = False

    def apply(self, fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if not self.added and not self.removed:
            return fields
        drop = self.removed | {name.lower() for name, _ in self.added}
        return [(n, v) for n, v in fields if n.lower() not in drop] + list(self.added)

    def strip(self, headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """An origin response's headers without the removed fields: what is stored and
        decided on (a stripped Set-Cookie no longer keeps a response out of the cache)."""
        if not self.removed:
            return headers
        return tuple((n, v) for n, v in headers if n.lower() not in self.removed)


NO_EDITS = ResponseEdits()


def response_edits(edge: EdgeOptions, *, for_cache: bool = False) -> ResponseEdits:
    """What `edge` switches on for the zone's responses; NO_EDITS when nothing. An origin
    shield's (`for_cache`) add nothing: the edges that ask it add the zone's fields."""
    removed = frozenset({"set-cookie"}) if edge.stripcookie else frozenset()
    if for_cache:
        return ResponseEdits(removed=removed, for_cache=True)
    added = []
    if edge.cors:
        added.append(CORS_ORIGIN)
    if edge.disposition:
        added.append(ATTACHMENT)
    if not added and not removed:
        return NO_EDITS
    return ResponseEdits(tuple(added), removed)


def is_preflight(method: str, hmap: HeaderMap) -> bool:
    """A CORS preflight (Fetch standard, CORS-preflight request): OPTIONS with Origin and
    Access-Control-Request-Method."""
    return method == "OPTIONS" and "origin" in hmap and "access-control-request-method" in hmap


def preflight_fields(hmap: HeaderMap) -> list[tuple[str, str]]:
    """The fields of the edge's 204 to a preflight: any origin, the methods a pull zone
    serves, the headers the request asked for, and how long to keep the answer."""
    fields = [
        CORS_ORIGIN,
        ("Access-Control-Allow-Methods", PREFLIGHT_METHODS),
    ]
    asked = hmap.get("access-control-request-headers", "").strip()
    if asked:
        fields.append(("Access-Control-Allow-Headers", asked))
    fields.append(("Access-Control-Max-Age", PREFLIGHT_MAX_AGE))
    return fields


def fails_over(status: int) -> bool:
    """Whether the origin's answer `status` (or the 502/504 the edge makes of a refused or
    timed-out connection) sends the request to the backup origin: any 5xx."""
    return status >= 500
