"""The SDK's certificate calls and the zone's ssl block: what is sent, how answers are read
(5centscdn's own answers included). Pure: no network."""

from __future__ import annotations

import pytest

from pullzone.client import _requests as calls
from pullzone.client import _results as results
from pullzone.client._results import SslPolicy


def test_certificate_calls() -> None:
    assert calls.list_certs().path == "/account/ssl"
    assert calls.get_cert("7").path == "/account/ssl/7"
    upload = calls.upload_cert("n", "CRT", "KEY")
    assert (upload.method, upload.path, upload.idempotent) == ("POST", "/account/ssl/new", False)
    assert upload.json == {"name": "n", "crt": "CRT", "key": "KEY", "cabundle": ""}
    assert calls.update_cert(7, name="x").json == {"name": "x"}
    assert calls.delete_cert(7).method == "DELETE"
    for bad in (0, -1, "a/b", True, "7/../keys"):
        with pytest.raises(ValueError):
            calls.cert_path(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        calls.upload_cert("n", b"CRT", "KEY")  # type: ignore[arg-type]


def test_update_ssl_sends_y_n() -> None:
    call = calls.update_ssl(3, enabled=True, http2=False, certid=7)
    assert (call.path, call.json) == (
        "/zones/http/pull/3/ssl",
        {"enabled": "Y", "http2": "N", "certid": 7},
    )
    with pytest.raises(TypeError):
        calls.update_ssl(3, enable=True)  # type: ignore[call-arg]


def test_5centscdn_ssl_block_is_read() -> None:
    block = {"http": "N", "http2": "Y", "redirect": "Y", "mode": "S", "certid": None,
             "zerossl": None, "enabled": "Y", "warning": False}  # fmt: skip
    assert results.ssl_policy(block) == SslPolicy(True, True, True, "S", 0, "")
    assert results.ssl_policy({}) == SslPolicy()


def test_certificate_answer_is_read() -> None:
    cert = results.one_cert(
        {
            "cert": {
                "id": 12345,
                "name": "sample",
                "crt": "C",
                "key": "--- redacted ---",
                "cabundle": "",
                "domain": "example.com",
                "sans": ["example.com", "www.example.com"],
                "expiry": "2027-01-01",
                "installs": 1,
                "expired": False,
                "validFrom": "2026-01-01",
            }
        }
    )
    assert (cert.id, cert.installs, cert.zones, cert.valid_from) == (12345, 1, (), "2026-01-01")
    assert not hasattr(cert, "key")
