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
from urllib.parse import urlsplit

from pullzone.edge import securetoken
from pullzone.edge.client import address_of, networks, within
from pullzone.edge.http import Request
from pullzone.zones.blocks import DomainLock, GeoBlock, IpAccess, SecureToken, UserAgent
from pullzone.zones.model import Zone


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 403; 410 for a signed URL that expired
    reason: str  # the block that refused: the metrics label
    message: str  # the short text body


# (request, the client's address, now) → a refusal, or None to let the request through.
Rule = Callable[[Request, str, float], Refusal | None]
# A client address → its ISO 3166 country code, None when unknown (edge/geoip.py).
CountryOf = Callable[[str], str | None]


def rules_of(zone: Zone, country_of: CountryOf | None = None) -> tuple[Rule, ...]:
    """The rules `zone`'s blocks switch on, in the order they are checked."""
    rules: list[Rule] = []
    if zone.securetoken.enabled:
        rules.append(signed_urls(zone.securetoken))
    if zone.ipaccess.enabled:
        rules.append(ipaccess_rule(zone.ipaccess))
    if zone.geoblock.enabled:  # without --geoip-db on this node: every country unknown
        rules.append(geoblock_rule(zone.geoblock, country_of or _unknown))
    if zone.domainlock.enabled:
        rules.append(domainlock_rule(zone.domainlock))
    if zone.useragent.enabled:
        rules.append(useragent_rule(zone.useragent))
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


# -- the access blocks: each compiled once into a closure over what it checks -------------
# `ips` lists clients exempt from the block (contract §10); policy Y/N as docs/zones.md.


def _unknown(client: str) -> str | None:
    return None


def _exempt(ips: tuple[str, ...]) -> Callable[[str], bool]:
    nets = networks(ips)
    if not nets:
        return lambda client: False
    return lambda client: within(address_of(client), nets)


def ipaccess_rule(block: IpAccess) -> Rule:
    """Policy Y: refuse the listed addresses; N: allow only them."""
    listed = networks(block.addresses)
    exempt = _exempt(block.ips)
    refuse_listed = block.policy == "Y"
    refused = Refusal(403, "ipaccess", "Forbidden: your address may not access this zone\n")

    def rule(request: Request, client: str, now: float) -> Refusal | None:
        if within(address_of(client), listed) is refuse_listed and not exempt(client):
            return refused
        return None

    return rule


def geoblock_rule(block: GeoBlock, country_of: CountryOf) -> Rule:
    """Policy Y: refuse clients from the listed countries; N: allow only those (a client
    of no known country is then refused)."""
    listed = frozenset(code.upper() for code in block.countries)
    exempt = _exempt(block.ips)
    refuse_listed = block.policy == "Y"
    refused = Refusal(403, "geoblock", "Forbidden: not available in your country\n")

    def rule(request: Request, client: str, now: float) -> Refusal | None:
        if (country_of(client) in listed) is refuse_listed and not exempt(client):
            return refused
        return None

    return rule


def referer_host(referer: str) -> str | None:
    """The host of a Referer field (RFC 9110 §10.1.3), lower case; None when it has none."""
    try:
        host = urlsplit(referer.strip()).hostname
    except ValueError:
        return None
    return host.removesuffix(".") if host else None


def domain_listed(host: str | None, domains: frozenset[str]) -> bool:
    """`host` is one of `domains` or a subdomain of one."""
    if host is None:
        return False
    while True:
        if host in domains:
            return True
        _, dot, host = host.partition(".")
        if not dot:
            return False


MEMO_REFERERS = 4096  # Referers a worker remembers per zone


def domainlock_rule(block: DomainLock) -> Rule:
    """Policy Y: only Referers of the listed domains; N: all but those. A request without
    a Referer is refused only with noreferer=Y."""
    domains = frozenset(domain.lower() for domain in block.domains)
    exempt = _exempt(block.ips)
    refuse_listed = block.policy == "N"
    noreferer = block.noreferer
    refused = Refusal(403, "domainlock", "Forbidden: this Referer may not link here\n")

    seen: dict[str, bool] = {}  # Referer → listed: pages send the same few again and again

    def rule(request: Request, client: str, now: float) -> Refusal | None:
        referer = request.hmap.get("referer", "").strip()
        if not referer:
            if noreferer and not exempt(client):
                return refused
            return None
        listed = seen.get(referer)
        if listed is None:
            if len(seen) >= MEMO_REFERERS:
                seen.clear()
            listed = seen[referer] = domain_listed(referer_host(referer), domains)
        if listed is refuse_listed and not exempt(client):
            return refused
        return None

    return rule


def useragent_rule(block: UserAgent) -> Rule:
    """Policy Y: refuse agents holding one of the substrings; N: allow only those."""
    folded = not block.casesensitive
    agents = tuple(a.lower() if folded else a for a in block.agents if a)
    exempt = _exempt(block.ips)
    refuse_listed = block.policy == "Y"
    refused = Refusal(403, "useragent", "Forbidden: this User-Agent may not access this zone\n")

    def rule(request: Request, client: str, now: float) -> Refusal | None:
        agent = request.hmap.get("user-agent", "")
        if folded:
            agent = agent.lower()
        matched = any(part in agent for part in agents)
        if matched is refuse_listed and not exempt(client):
            return refused
        return None

    return rule
