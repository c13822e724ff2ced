"""The access blocks as rules (edge/rules.py): pure functions of a request and a client."""

from __future__ import annotations

import pytest

from pullzone.edge.http import Request
from pullzone.edge.rules import (
    Refusal,
    domain_listed,
    domainlock_rule,
    geoblock_rule,
    ipaccess_rule,
    referer_host,
    refusal,
    rules_of,
    useragent_rule,
)
from pullzone.zones.blocks import DomainLock, GeoBlock, IpAccess, UserAgent
from pullzone.zones.model import Zone

ZONE = Zone(id=1, name="z", alias="z", origin="http://origin.test")


def request(**fields: str) -> Request:
    headers = [(name.replace("_", "-"), value) for name, value in fields.items()]
    hmap = {name.lower(): value for name, value in headers}
    return Request("GET", "/a.js", headers, hmap, "1.1", True, b"")


def reason(rule: object, client: str = "192.0.2.1", **fields: str) -> str | None:
    assert callable(rule)
    refused = rule(request(**fields), client, 0.0)
    assert refused is None or isinstance(refused, Refusal)
    if refused is not None:
        assert refused.status == 403
        assert 0 < len(refused.message) < 100
    return None if refused is None else refused.reason


def test_a_zone_with_every_block_off_has_no_rules() -> None:
    assert rules_of(ZONE) == ()


def test_each_block_switched_on_is_one_rule() -> None:
    zone = ZONE.with_changes(
        ipaccess=IpAccess(enabled=True),
        geoblock=GeoBlock(enabled=True),
        domainlock=DomainLock(enabled=True),
        useragent=UserAgent(enabled=True),
    )
    assert len(rules_of(zone, lambda client: "FR")) == 4
    # stored but off: no rule
    assert rules_of(ZONE.with_changes(ipaccess=IpAccess(addresses=("10.0.0.0/8",)))) == ()


@pytest.mark.parametrize(
    ("policy", "client", "expected"),
    [
        ("Y", "10.1.2.3", "ipaccess"),
        ("Y", "192.0.2.7", "ipaccess"),
        ("Y", "192.0.2.8", None),
        ("Y", "2001:db8::5", "ipaccess"),
        ("Y", "::ffff:10.0.0.1", "ipaccess"),  # an IPv4-mapped address is the IPv4 one
        ("N", "10.1.2.3", None),
        ("N", "192.0.2.8", "ipaccess"),
        ("N", "", "ipaccess"),  # no address at all: not in the list
    ],
)
def test_ipaccess_refuses_or_allows_the_listed_addresses(
    policy: str, client: str, expected: str | None
) -> None:
    block = IpAccess(True, policy, ("10.0.0.0/8", "192.0.2.7", "2001:db8::/32"))
    assert reason(ipaccess_rule(block), client) == expected


@pytest.mark.parametrize("policy", ["Y", "N"])
def test_ips_exempts_clients_from_every_block(policy: str) -> None:
    ips = ("198.51.100.0/24",)
    blocks = [
        ipaccess_rule(IpAccess(True, policy, ("198.51.100.9", "203.0.113.1"), ips)),
        geoblock_rule(
            GeoBlock(True, policy, ("FR", "DE"), ips),
            lambda client: "FR" if client.endswith(".1") else "US",
        ),
        domainlock_rule(DomainLock(True, policy, ("evil.test", "good.test"), ips, True)),
        useragent_rule(UserAgent(True, policy, ("curl", "bot"), ips)),
    ]
    for rule in blocks:
        # one of two clients is refused (or both, domainlock without a Referer)...
        refused = {
            reason(rule, "203.0.113.1", user_agent="curl/8", referer="https://evil.test/"),
            reason(rule, "203.0.113.2", user_agent="Mozilla", referer="https://other.test/"),
            reason(rule, "203.0.113.3"),
        }
        assert refused - {None}, rule
        # ...never one of `ips`
        for fields in (
            {"user_agent": "curl/8", "referer": "https://evil.test/"},
            {"user_agent": "Mozilla", "referer": "https://other.test/"},
            {},
        ):
            assert reason(rule, "198.51.100.9", **fields) is None
            assert reason(rule, "198.51.100.200", **fields) is None


@pytest.mark.parametrize(
    ("policy", "country", "expected"),
    [
        ("Y", "FR", "geoblock"),
        ("Y", "US", None),
        ("Y", None, None),
        ("N", "FR", None),
        ("N", "US", "geoblock"),
        ("N", None, "geoblock"),  # allow only these: an unknown country is not one
    ],
)
def test_geoblock_by_the_clients_country(
    policy: str, country: str | None, expected: str | None
) -> None:
    asked: list[str] = []

    def country_of(client: str) -> str | None:
        asked.append(client)
        return country

    assert reason(geoblock_rule(GeoBlock(True, policy, ("FR", "DE")), country_of)) == expected
    assert asked == ["192.0.2.1"]


def test_geoblock_without_a_geoip_db_knows_no_country() -> None:
    zone = ZONE.with_changes(geoblock=GeoBlock(True, "N", ("FR",)))
    assert refusal(rules_of(zone), request(), "192.0.2.1", 0.0) is not None
    zone = ZONE.with_changes(geoblock=GeoBlock(True, "Y", ("FR",)))
    assert refusal(rules_of(zone), request(), "192.0.2.1", 0.0) is None


@pytest.mark.parametrize(
    ("referer", "host"),
    [
        ("https://Example.COM/page", "example.com"),
        ("http://user@cdn.example.com:8080/x?y", "cdn.example.com"),
        ("https://example.com./", "example.com"),
        ("http://[2001:db8::1]/", "2001:db8::1"),
        ("/relative/only", None),
        ("http://[broken/", None),
    ],
)
def test_the_host_of_a_referer(referer: str, host: str | None) -> None:
    assert referer_host(referer) == host


def test_a_domain_matches_itself_and_its_subdomains_only() -> None:
    domains = frozenset({"example.com"})
    assert domain_listed("example.com", domains)
    assert domain_listed("a.b.example.com", domains)
    assert not domain_listed("badexample.com", domains)
    assert not domain_listed("example.com.evil.test", domains)
    assert not domain_listed("com", domains)
    assert not domain_listed(None, domains)


@pytest.mark.parametrize(
    ("policy", "noreferer", "referer", "expected"),
    [
        ("Y", False, "https://example.com/", None),
        ("Y", False, "https://www.example.com/a", None),
        ("Y", False, "https://other.test/", "domainlock"),
        ("Y", False, "garbage", "domainlock"),
        ("Y", False, None, None),
        ("Y", True, None, "domainlock"),
        ("Y", True, "  ", "domainlock"),
        ("N", False, "https://www.example.com/", "domainlock"),
        ("N", False, "https://other.test/", None),
        ("N", False, None, None),
        ("N", True, None, "domainlock"),
    ],
)
def test_domainlock_by_the_referer(
    policy: str, noreferer: bool, referer: str | None, expected: str | None
) -> None:
    rule = domainlock_rule(DomainLock(True, policy, ("example.com",), (), noreferer))
    fields = {} if referer is None else {"referer": referer}
    assert reason(rule, **fields) == expected


@pytest.mark.parametrize(
    ("policy", "casesensitive", "agent", "expected"),
    [
        ("Y", False, "curl/8.5", "useragent"),
        ("Y", False, "CURL/8.5", "useragent"),
        ("Y", True, "CURL/8.5", None),
        ("Y", True, "curl/8.5", "useragent"),
        ("Y", False, "Mozilla/5.0 (compatible; BadBot/1.0)", "useragent"),
        ("Y", False, "Mozilla/5.0", None),
        ("Y", False, None, None),
        ("N", False, "curl/8.5", None),
        ("N", False, "Mozilla/5.0", "useragent"),
        ("N", False, None, "useragent"),
        ("N", True, "Curl/8", "useragent"),
    ],
)
def test_useragent_by_substring(
    policy: str, casesensitive: bool, agent: str | None, expected: str | None
) -> None:
    rule = useragent_rule(UserAgent(True, policy, ("curl", "BadBot"), (), casesensitive))
    fields = {} if agent is None else {"user_agent": agent}
    assert reason(rule, **fields) == expected


def test_the_first_refusal_is_answered() -> None:
    zone = ZONE.with_changes(
        ipaccess=IpAccess(True, "Y", ("192.0.2.0/24",)),
        useragent=UserAgent(True, "Y", ("curl",)),
    )
    rules = rules_of(zone)
    refused = refusal(rules, request(user_agent="curl"), "192.0.2.1", 0.0)
    assert refused is not None and refused.reason == "ipaccess"
    refused = refusal(rules, request(user_agent="curl"), "198.51.100.1", 0.0)
    assert refused is not None and refused.reason == "useragent"
    assert refusal(rules, request(user_agent="Mozilla"), "198.51.100.1", 0.0) is None
