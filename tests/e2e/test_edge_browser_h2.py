"""HTTP/2 at the edge in a real browser: Debian's headless Chromium (driven by Selenium, as
tests/e2e/test_dashboard.py does) loads an HTML page, its stylesheet and its image from a
zone with `ssl.http2=Y` over `--edge-tls`, the certificate from the tests' trustme CA.

Chromium trusts the leaf by its public key (`--ignore-certificate-errors-spki-list`: no CA
installed anywhere) and reaches every name on loopback (`--host-resolver-rules`). What
came over h2 is what the page's own Resource/Navigation Timing says (`nextHopProtocol`),
what rendered is what the DOM says, and the edge counted the requests as h2 (/metrics).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from origin import Origin, Reply
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver as Chrome
from selenium.webdriver.support.ui import WebDriverWait
from server import Server, samples, until
from tls_support import Tls, loopback_names, tls, tls_server, url

__all__ = ["loopback_names", "tls", "tls_server"]  # the fixtures this module uses

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CACHEABLE = [("Cache-Control", "max-age=600")]
H2_REQUESTS = 'pullzone_edge_protocol_requests_total{protocol="h2",scheme="https"}'

pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason="needs Debian's chromium and chromedriver",
)


def png(width: int, height: int) -> bytes:
    """A solid red RGB PNG (RFC 2083), without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def spki_hash(crt: str) -> str:
    """base64(sha256(SubjectPublicKeyInfo)): what Chromium's SPKI allow-list takes."""
    key = x509.load_pem_x509_certificate(crt.encode()).public_key()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture()
def h2_zone(tls_server: Server, origin: Origin, tls: Tls) -> dict[str, Any]:
    zone = tls_server.create_zone(origin.url, alias="browser")
    crt, key = tls.issue(zone["fqdn"])
    zone["certid"] = tls_server.install_certificate(zone["id"], crt, key, http2=True)
    zone["spki"] = spki_hash(crt)
    return zone


def chromium(profile: Path, spki: str) -> Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",  # TCP + TLS + ALPN, as the edge offers
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
        f"--ignore-certificate-errors-spki-list={spki}",
        "--host-resolver-rules=MAP * 127.0.0.1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture()
def browser(tmp_path: Path, h2_zone: dict[str, Any]) -> Iterator[Chrome]:
    driver = chromium(tmp_path / "chromium", h2_zone["spki"])
    try:
        yield driver
    finally:
        driver.quit()


PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>over h2</title>
<link rel="stylesheet" href="style.css"></head>
<body><h1 id="title">Served over HTTP/2</h1><img id="pic" src="pic.png" alt="red"></body>
</html>
"""
STYLE = b"#title { color: rgb(0, 128, 0); } body { margin: 7px; }"

# Every entry the page fetched: its URL, protocol and whether it arrived (no error: the
# transfer or the decoded body has a size).
ENTRIES = """
return performance.getEntries()
  .filter((e) => e.entryType === "navigation" || e.entryType === "resource")
  .map((e) => ({name: e.name, protocol: e.nextHopProtocol, type: e.entryType}));
"""
RENDERED = """
const img = document.getElementById("pic");
return {
  complete: document.readyState === "complete",
  width: img.complete ? img.naturalWidth : 0,
  height: img.complete ? img.naturalHeight : 0,
  color: getComputedStyle(document.getElementById("title")).color,
  margin: getComputedStyle(document.body).marginTop,
};
"""


def test_chromium_loads_a_page_and_its_subresources_over_h2(
    tls_server: Server, origin: Origin, h2_zone: dict[str, Any], browser: Chrome
) -> None:
    base = "/site"
    for name, kind, body in (
        ("page.html", "text/html; charset=utf-8", PAGE),
        ("style.css", "text/css", STYLE),
        ("pic.png", "image/png", png(23, 17)),
    ):
        origin.route(
            f"{base}/{name}", Reply(headers=[*CACHEABLE, ("Content-Type", kind)], body=body)
        )
    before = samples(tls_server).get(H2_REQUESTS, 0)

    page = url(tls_server, h2_zone["fqdn"], f"{base}/page.html")
    browser.get(page)
    state = WebDriverWait(browser, 20, poll_frequency=0.1).until(
        lambda d: (s := d.execute_script(RENDERED))["complete"] and s["width"] and s,
        "waiting for the page and its image",
    )
    # Rendered: the image decoded at its size, the stylesheet applied.
    assert (state["width"], state["height"]) == (23, 17)
    assert (state["color"], state["margin"]) == ("rgb(0, 128, 0)", "7px")

    entries = {e["name"]: e for e in browser.execute_script(ENTRIES)}
    origin_of = url(tls_server, h2_zone["fqdn"], base)
    for name in ("page.html", "style.css", "pic.png"):
        entry = entries.get(f"{origin_of}/{name}")
        assert entry is not None, (name, sorted(entries))
        assert entry["protocol"] == "h2", entry
    assert entries[page]["type"] == "navigation"

    # The edge answered them over h2, and asked the origin once each.
    metrics = until(lambda: samples(tls_server), lambda m: m.get(H2_REQUESTS, 0) >= before + 3)
    assert metrics.get(H2_REQUESTS, 0) >= before + 3
    for name in ("page.html", "style.css", "pic.png"):
        assert origin.count(f"{base}/{name}") == 1
