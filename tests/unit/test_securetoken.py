"""Signed URLs (edge/securetoken.py): links made and checked against vectors computed here
with hashlib and base64, per policy, with and without keyip."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from pullzone.edge.securetoken import EXPIRED, OK, WRONG, Check, origin_form, sign, strip
from pullzone.zones.blocks import SecureToken

SECRET = "s3cr3t-key"
E = 1_900_000_000
NOW = 1_800_000_000.0
CLIENT = "203.0.113.7"


def m(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.md5(text.encode()).digest()).decode().rstrip("=")


def block(policy: str, keyip: bool = False, ips: tuple[str, ...] = ()) -> SecureToken:
    return SecureToken(enabled=True, policy=policy, keyip=keyip, secret=SECRET, ips=ips)


@pytest.mark.parametrize(
    ("policy", "keyip", "expected"),
    [
        ("Q", False, f"/v/a.mp4?md5={m(f'{E}/v/a.mp4 {SECRET}')}&expires={E}"),
        ("Q", True, f"/v/a.mp4?md5={m(f'{E}/v/a.mp4{CLIENT} {SECRET}')}&expires={E}"),
        ("F", False, f"/md5={m(f'{E}/v/a.mp4 {SECRET}')},expires={E}/v/a.mp4"),
        ("F", True, f"/md5={m(f'{E}/v/a.mp4{CLIENT} {SECRET}')},expires={E}/v/a.mp4"),
        ("D", False, f"/md5={m(f'{E}/v/ {SECRET}')},expires={E}/v/a.mp4"),
        ("D", True, f"/md5={m(f'{E}/v/{CLIENT} {SECRET}')},expires={E}/v/a.mp4"),
    ],
)
def test_a_link_is_the_contracts_md5_and_verifies(policy: str, keyip: bool, expected: str) -> None:
    link = sign(block(policy, keyip), "/v/a.mp4", E, CLIENT if keyip else None)
    assert link == expected
    assert "=" not in link.split("md5=")[1].split("&")[0].split(",")[0]  # no padding
    assert Check(block(policy, keyip)).verify(link, CLIENT, NOW) == (OK, "/v/a.mp4")


def test_a_query_stays_and_the_token_alone_is_stripped() -> None:
    link = sign(block("Q"), "/a.js?v=2", E)
    assert link == f"/a.js?v=2&md5={m(f'{E}/a.js {SECRET}')}&expires={E}"
    assert Check(block("Q")).verify(link, CLIENT, NOW) == (OK, "/a.js?v=2")
    reordered = f"/a.js?expires={E}&v=2&md5={m(f'{E}/a.js {SECRET}')}"
    assert Check(block("Q")).verify(reordered, CLIENT, NOW) == (OK, "/a.js?v=2")


def test_every_policy_reads_the_token_in_the_query_or_the_path() -> None:
    query_form = f"/v/a.mp4?md5={m(f'{E}/v/a.mp4 {SECRET}')}&expires={E}"
    assert Check(block("F")).verify(query_form, CLIENT, NOW)[0] == OK
    path_form = f"/md5={m(f'{E}/v/a.mp4 {SECRET}')},expires={E}/v/a.mp4"
    assert Check(block("Q")).verify(path_form, CLIENT, NOW)[0] == OK


def test_a_directory_link_opens_every_file_under_it_and_nothing_else() -> None:
    prefix = f"/md5={m(f'{E}/hls/720p/ {SECRET}')},expires={E}"
    check = Check(block("D"))
    for segment in ("index.m3u8", "seg-00001.ts", "seg-00002.ts"):
        assert check.verify(f"{prefix}/hls/720p/{segment}", CLIENT, NOW) == (
            OK,
            f"/hls/720p/{segment}",
        )
    assert check.verify(f"{prefix}/hls/1080p/seg-00001.ts", CLIENT, NOW)[0] == WRONG
    assert check.verify(f"{prefix}/hls/720p/sub/x.ts", CLIENT, NOW)[0] == WRONG
    assert check.verify(f"{prefix}/hls/720p/..", CLIENT, NOW)[0] == WRONG


def test_expired_is_410_only_when_the_signature_is_right() -> None:
    past = 1_700_000_000
    check = Check(block("Q"))
    assert check.verify(f"/x?md5={m(f'{past}/x {SECRET}')}&expires={past}", CLIENT, NOW) == (
        EXPIRED,
        "/x",
    )
    assert check.verify(f"/x?md5={m(f'{past}/x nope')}&expires={past}", CLIENT, NOW)[0] == WRONG


@pytest.mark.parametrize(
    "target",
    [
        "/x",  # missing
        "/x?md5=abc",
        f"/x?expires={E}",
        f"/x?md5={m(f'{E}/x {SECRET}')}&expires={E + 1}",  # expiry changed
        f"/y?md5={m(f'{E}/x {SECRET}')}&expires={E}",  # another path
        f"/x?md5={m(f'{E}/x {SECRET}')}&expires={E}&md5=zz",  # given twice
        f"/x?md5={m(f'{E}/x {SECRET}')}&expires=+{E}",
        f"/x?md5={m(f'{E}/x {SECRET}')}&expires={'9' * 13}",
        f"/md5={m(f'{E}/x {SECRET}')}/x",  # no expires in the segment
        f"/md5={m(f'{E}/ {SECRET}')},expires={E}",  # no path after it
        "/x?md5=\u00e9&expires=1",
    ],
)
def test_a_wrong_or_missing_token_is_403(target: str) -> None:
    assert Check(block("Q")).verify(target, CLIENT, NOW)[0] == WRONG


def test_keyip_binds_the_link_to_the_address() -> None:
    link = sign(block("Q", keyip=True), "/x", E, CLIENT)
    check = Check(block("Q", keyip=True))
    assert check.verify(link, CLIENT, NOW)[0] == OK
    assert check.verify(link, "203.0.113.8", NOW)[0] == WRONG
    assert check.verify(link, f"::ffff:{CLIENT}", NOW)[0] == OK  # a dual-stack listener
    with pytest.raises(ValueError, match="keyip"):
        sign(block("Q", keyip=True), "/x", E)


def test_exempt_addresses_pass_without_a_token_and_lose_any_they_carry() -> None:
    check = Check(block("Q", ips=("198.51.100.0/24", "2001:db8::/32")))
    assert check.verify("/x", "198.51.100.9", NOW) == (OK, "/x")
    assert check.verify("/x?md5=bad&expires=1&a=1", "2001:db8::5", NOW) == (OK, "/x?a=1")
    assert check.verify("/x", "198.51.101.9", NOW)[0] == WRONG
    assert check.verify("/x", "::ffff:198.51.100.9", NOW)[0] == OK
    assert check.verify("/x", "", NOW)[0] == WRONG


def test_strip_and_origin_form() -> None:
    assert strip("/a?b=1").target == "/a?b=1" and strip("/a?b=1").md5 is None
    assert strip("/a?md5=x&expires=1").target == "/a"
    assert strip("/md5=x,expires=1/a/b?c").target == "/a/b?c"
    assert origin_form("http://h.example/a?b") == "/a?b" and origin_form("http://h") == "/"


@pytest.mark.parametrize(
    ("path", "words"),
    [("x", "start with /"), ("/a/../b", ". or .."), (f"/a?md5=1&expires={E}", "already")],
)
def test_sign_refuses_what_no_edge_would_accept(path: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        sign(block("Q"), path, E)


def test_a_path_is_signed_as_a_client_sends_it() -> None:
    link = sign(block("F"), "/é b.txt", E)
    assert link == f"/md5={m(f'{E}/%C3%A9%20b.txt {SECRET}')},expires={E}/%C3%A9%20b.txt"


def zone_answer(**block: str) -> dict[str, object]:
    token = {"enabled": "Y", "policy": "Q", "keyip": "N", "list": SECRET, "timeout": 600}
    return {
        "zone": {
            "id": 7,
            "fqdn": "site.localhost",
            "ssl": {"enabled": "N"},
            "securetoken": {**token, **block},
        }
    }


def test_the_sdk_signs_with_the_zones_block_for_its_timeout() -> None:
    from pullzone.client._requests import Answer, sign_url

    call = sign_url(7, "/v/a.mp4")
    assert (call.method, call.path) == ("GET", "/zones/http/pull/7")
    url = call.result(Answer(200, zone_answer()))
    head, _, expires = url.partition("&expires=")
    assert abs(int(expires) - (time.time() + 600)) < 5
    assert head == f"http://site.localhost/v/a.mp4?md5={m(f'{expires}/v/a.mp4 {SECRET}')}"
    ssl_zone = zone_answer(policy="D")
    ssl_zone["zone"]["ssl"] = {"enabled": "Y"}  # type: ignore[index]
    url = sign_url(7, "/v/a.mp4", expires=30).result(Answer(200, ssl_zone))
    assert url.startswith("https://site.localhost/md5=") and url.endswith(
        ",expires=" + str(int(url.split("expires=")[1].split("/")[0])) + "/v/a.mp4"
    )
    with pytest.raises(ValueError, match="secret"):
        sign_url(7, "/a").result(Answer(200, zone_answer(list="")))
    with pytest.raises(ValueError, match="keyip"):
        sign_url(7, "/a").result(Answer(200, zone_answer(keyip="Y")))


def test_the_remembered_signature_never_outlives_its_link() -> None:
    check = Check(block("Q", keyip=True))
    link = sign(block("Q", keyip=True), "/x", E, CLIENT)
    assert check.status(link, CLIENT, NOW) == OK
    assert check.status(link, CLIENT, NOW) == OK  # remembered
    assert check.status(link, CLIENT, E + 1) == EXPIRED
    assert check.status(link, "203.0.113.8", NOW) == WRONG  # keyed by address too
    assert check.status("/x", CLIENT, NOW) == WRONG
    assert check.status("/x", CLIENT, NOW) == WRONG
    absolute = f"http://site.localhost{link}"
    assert check.status(absolute, CLIENT, NOW) == OK
    encoded = link.replace("/x", "/%78")  # routed as /x: the same resource
    assert check.status(encoded, CLIENT, NOW) == OK


def test_no_secret_no_link() -> None:
    empty = SecureToken(enabled=True, policy="Q", secret="")
    link = f"/x?md5={m(f'{E}/x ')}&expires={E}"
    assert Check(empty).verify(link, CLIENT, NOW)[0] == WRONG
