"""The zone's access rules at the edge (docs/zones.md, Blocks): signed URLs, Referer,
address, country and User-Agent rules, each a pure function of the request and the
client's address.

A zone's rules are compiled once, when its state changes (edge/state.py `ZoneView`), into
a tuple checked in order before the cache is looked up; a zone with every block off has
an empty tuple, so a HIT pays one truth test for them. A refusal is answered with a short
text body, never cached (edge/deliver.py `refuse`), and counted by rule
(`pullzone_edge_refused{reason}`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pullzone.edge import securetoken
from pullzone.edge.http import Request
from pullzone.zones.blocks import SecureToken
from pullzone.zones.model import Zone


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 403; 410 for a signed URL that expired
    reason: str  # the block that refused: the metrics label
    message: str  # the short text body


# (request, the client's address, now) → a refusal, or None to let the request through.
Rule = Callable[[Request, str, float], Refusal | None]


def rules_of(zone: Zone) -> tuple[Rule, ...]:
    """The rules `zone`'s blocks switch on, in the order they are checked."""
    rules: list[Rule] = []
    if zone.securetoken.enabled:
        rules.append(signed_urls(zone.securetoken))
    return tuple(rules)


def signed_urls(block: SecureToken) -> Rule:
    """The `securetoken` rule: a signed link, checked on every request (edge/securetoken.py;
    the route memo keeps the routing of the target without its token, never this verdict)."""
    check = securetoken.Check(block)

    def rule(request: Request, client: str, now: float) -> Refusal | None:
        # Checked on the target as it is routed (edge/lifecycle.py `_route`), so what is
        # checked is what is served.
        status = check.status(request.target, client, now)
        if status == securetoken.OK:
            return None
        if status == securetoken.EXPIRED:
            return Refusal(410, "securetoken", "this signed link has expired")
        return Refusal(403, "securetoken", "a valid signed link is needed")

    return rule


def refusal(rules: tuple[Rule, ...], request: Request, client: str, now: float) -> Refusal | None:
    """The first refusal of `rules`, or None when every rule lets the request through."""
    for rule in rules:
        refused = rule(request, client, now)
        if refused is not None:
            return refused
    return None
