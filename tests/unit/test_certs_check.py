"""certs.check: every way an upload is refused, each naming its field, and what a good one
gives. Real certificates: a trustme CA, and cryptography-built ones for the dates trustme
cannot set."""

from __future__ import annotations

import datetime as dt

import pytest
from certs_support import built, issued, other_key

from pullzone.certs.check import MAX_PEM, check_upload
from pullzone.refusal import Reason, Refused

NOW = dt.datetime.now(dt.UTC)


def refusal(crt: str, key: str, cabundle: str = "") -> str:
    with pytest.raises(Refused) as caught:
        check_upload(crt, key, cabundle)
    assert caught.value.reason is Reason.INVALID
    return caught.value.message


def test_a_good_upload() -> None:
    pem = issued("cdn.example.com", "*.Static.example.com")
    checked = check_upload(pem.crt, pem.key, pem.cabundle)
    assert checked.sans == ("cdn.example.com", "*.static.example.com")
    assert checked.domain == "cdn.example.com"  # trustme sets no CN: the first DNS name
    assert checked.valid_from < NOW.timestamp() < checked.expiry
    assert checked.crt.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in checked.key


def test_a_chain_through_an_intermediate() -> None:
    pem = issued("cdn.example.com", intermediate=True)
    checked = check_upload(pem.crt, pem.key, pem.cabundle)
    assert checked.cabundle.count("BEGIN CERTIFICATE") == 1
    # a fullchain in crt: the leaf, its intermediates in front of the bundle
    fullchain = check_upload(pem.crt + pem.cabundle, pem.key, pem.root)
    assert fullchain.crt == checked.crt
    assert fullchain.cabundle.count("BEGIN CERTIFICATE") == 2


def test_common_name_is_the_domain() -> None:
    pem = built("www.example.org", sans=("example.org", "www.example.org"))
    assert check_upload(pem.crt, pem.key).domain == "www.example.org"


@pytest.mark.parametrize(
    "crt", ["garbage", "", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"]
)
def test_crt_that_is_not_pem(crt: str) -> None:
    pem = issued("a.example.com")
    message = refusal(crt, pem.key)
    assert message.startswith("crt")


def test_key_that_is_not_pem() -> None:
    pem = issued("a.example.com")
    assert refusal(pem.crt, "not a key").startswith("key is not a PEM private key")
    assert refusal(pem.crt, "").startswith("key: is required")


def test_mismatched_key() -> None:
    pem = issued("a.example.com")
    message = refusal(pem.crt, other_key())
    assert message.startswith("key: does not match the certificate")


def test_key_is_never_echoed() -> None:
    pem = issued("a.example.com")
    broken_key = pem.key.replace("A", "B", 5)
    for message in (refusal(pem.crt, broken_key), refusal(pem.crt, other_key())):
        assert pem.key.splitlines()[1][:20] not in message
        assert broken_key.splitlines()[1][:20] not in message


def test_expired() -> None:
    pem = built(
        "old.example.com",
        not_before=NOW - dt.timedelta(days=400),
        not_after=NOW - dt.timedelta(days=10),
    )
    assert "expired on" in refusal(pem.crt, pem.key)


def test_not_yet_valid() -> None:
    pem = built("new.example.com", not_before=NOW + dt.timedelta(days=10))
    assert "is not valid yet" in refusal(pem.crt, pem.key)


def test_chain_that_does_not_verify() -> None:
    pem = issued("a.example.com", intermediate=True)
    stranger = issued("b.example.com", intermediate=True)
    message = refusal(pem.crt, pem.key, stranger.cabundle)
    assert message.startswith("cabundle: the chain does not verify")
    assert refusal(pem.crt, pem.key, "junk").startswith("cabundle is not a PEM certificate")


def test_one_mebibyte_pem() -> None:
    pem = issued("a.example.com")
    huge = pem.crt * (1024 * 1024 // len(pem.crt) + 1)
    assert f"{MAX_PEM // 1024} KiB" in refusal(huge, pem.key)
    assert refusal(pem.crt, pem.key, huge).startswith("cabundle:")
    assert refusal(pem.crt, "x" * (MAX_PEM + 1)).startswith("key:")


def test_no_name_at_all() -> None:
    pem = built("x", sans=(), common_name=False)
    assert refusal(pem.crt, pem.key).startswith("crt: names no host")
