"""The dashboard in a real headless Chromium (Debian's `chromium` and `chromedriver`, driven
by Selenium), against a real `pullzone serve` and a real origin: sign in, watch a zone's
numbers change after known edge traffic, purge through the form and see the next request
MISS, change a zone block through its settings panel.

Every wait is a bounded WebDriverWait on what the page shows (it refreshes every 5 s).
`PULLZONE_SCREENSHOTS=1` also saves docs/dashboard.png and docs/dashboard-purge.png.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats_servers import NatsServer
from origin import Origin, Reply
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver as Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait
from server import API_KEY, Server
from test_cluster import PROBE, new_zone, running
from test_cluster import node as cluster_node
from test_cluster import until as poll

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20.0  # seconds; the page refreshes its numbers every 5 s
DOCS = Path(__file__).resolve().parents[2] / "docs"
KEY_ITEM = "pullzone.apiKey"

Zone = dict[str, Any]


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # for CSP reports
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def page_url(server: Server, path: str = "/") -> str:
    return f"http://127.0.0.1:{server.api_port}{path}"


def until(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition, f"waiting for {what}")


def by_label(driver: WebDriver, label: str) -> WebElement:
    """The form control a visible <label> starting with `label` names (by `for` or by
    wrapping it): how a screen reader user finds it."""
    for element in driver.find_elements(By.TAG_NAME, "label"):
        if element.is_displayed() and element.text.strip().startswith(label):
            target = element.get_attribute("for")
            if target:
                return driver.find_element(By.ID, target)
            return element.find_element(By.CSS_SELECTOR, "input, textarea, select")
    raise AssertionError(f"no visible label {label!r}")


def button(driver: WebDriver, text: str) -> WebElement:
    return driver.find_element(By.XPATH, f"//button[normalize-space()='{text}']")


def text_of(driver: WebDriver, css: str) -> str:
    """The rendered text of the first element matching `css` ("" if none), read in one
    script call: the page re-renders as it refreshes, so no element is held across calls."""
    script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';"
    return str(driver.execute_script(script, css)).strip()


def texts_of(driver: WebDriver, css: str) -> list[str]:
    script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText);"
    return [str(t).strip() for t in driver.execute_script(script, css)]


def session_key(driver: WebDriver) -> Any:
    return driver.execute_script("return sessionStorage.getItem(arguments[0])", KEY_ITEM)


def sign_in(driver: WebDriver, server: Server, key: str) -> None:
    driver.get(page_url(server, "/dashboard"))
    field = by_label(driver, "API key")
    assert field.get_attribute("type") == "password"
    field.send_keys(key)
    button(driver, "Sign in").click()


def screenshot(driver: Chrome, name: str) -> None:
    """The whole page as docs/NAME, when PULLZONE_SCREENSHOTS=1 (so CI rewrites nothing)."""
    if os.environ.get("PULLZONE_SCREENSHOTS") != "1":
        return
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        DOCS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(DOCS / name))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_page_is_served_without_a_key_under_a_strict_policy(server: Server) -> None:
    with httpx.Client(timeout=10) as client:
        for path in ("/", "/dashboard"):
            r = client.get(page_url(server, path))
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["cache-control"] == "no-store"
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert 'src="/static/dashboard.js"' in r.text and "<script>" not in r.text
        r = client.get(page_url(server, "/static/dashboard.js"))
        assert (r.status_code, r.headers["content-type"]) == (200, "text/javascript; charset=utf-8")
        r = client.get(page_url(server, "/static/secrets.txt"))
        assert (r.status_code, r.json()["result"]) == (404, "error")
    paths = server.api.get("/openapi.json").json()["paths"]
    assert not {"/", "/dashboard", "/static/{name}"} & set(paths)


def test_a_refused_key_shows_the_api_message_and_is_not_kept(
    browser: Chrome, server: Server
) -> None:
    expected = httpx.get(
        f"{server.api_url}/zones/http/pull", headers={"X-API-Key": "not-a-key"}
    ).json()["message"]
    sign_in(browser, server, "not-a-key")
    until(browser, lambda d: text_of(d, "#login-error") == expected, "the API's 401 message")
    assert not browser.find_element(By.ID, "app").is_displayed()
    assert session_key(browser) is None
    assert "not-a-key" not in browser.current_url


@pytest.mark.zone(name="site")
def test_sign_in_watch_traffic_and_purge_through_the_form(
    browser: Chrome, server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", "max-age=3600"), ("Content-Type", "text/plain")],
            body=b"dashboard\n",
        ),
    )
    row = f'#zones tr[data-zone-id="{zone["id"]}"]'

    def cell(field: str) -> Callable[[WebDriver], str]:
        return lambda d: text_of(d, f'{row} [data-field="{field}"]')

    # Sign in: the zone is listed; the key is in sessionStorage, never in the URL.
    sign_in(browser, server, API_KEY)
    until(browser, lambda d: zone["fqdn"] in text_of(d, row), "the zone in the zones table")
    until(browser, lambda d: cell("requests")(d) == "0", "no requests yet")
    assert API_KEY not in browser.current_url
    assert session_key(browser) == API_KEY
    browser.refresh()  # the key survives a reload of the tab
    until(browser, lambda d: zone["fqdn"] in text_of(d, row), "the zone after a reload")

    # Known traffic: one MISS, two HITs; the page shows them within a refresh or two.
    assert [server.get(zone["fqdn"], path).headers["x-cache"] for _ in range(3)] == [
        "MISS",
        "HIT",
        "HIT",
    ]
    until(browser, lambda d: cell("requests")(d) == "3", "3 requests on the page")
    assert cell("hit_ratio")(browser) == "66.7%"
    until(browser, lambda d: cell("cache")(d).endswith("(1 object)"), "the cached object")

    # The zone's own chart and purge panel.
    browser.find_element(By.CSS_SELECTOR, f"{row} button").click()
    until(browser, lambda d: d.find_element(By.ID, "zone-panel").is_displayed(), "zone panel")
    until(
        browser,
        lambda d: "Last hour, site: HIT 2 MISS 1" in text_of(d, "#chart-summary"),
        "the zone's chart",
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart rect")) >= 2
    screenshot(browser, "dashboard.png")

    # The whole-zone purge stays disabled until the zone's alias is typed.
    confirm = by_label(browser, "Type")
    whole = button(browser, "Purge whole zone")
    assert not whole.is_enabled()
    confirm.send_keys(zone["name"] + "x")
    assert not whole.is_enabled()
    confirm.clear()
    confirm.send_keys(zone["alias"])
    until(browser, lambda d: whole.is_enabled(), "the whole-zone button enabled")
    confirm.clear()
    confirm.send_keys(" ")  # clear() fires no input event: type something that is not it
    until(browser, lambda d: not whole.is_enabled(), "the whole-zone button disabled again")

    # An API refusal is shown verbatim.
    paths = by_label(browser, "Paths")
    bad = {"files": ["relative/path"]}
    expected = server.api.post(f"/zones/http/pull/{zone['id']}/purge", json=bad).json()
    assert expected["result"] == "error"
    paths.send_keys("relative/path")
    button(browser, "Purge").click()
    until(browser, lambda d: text_of(d, "#purge-error") == expected["message"], "the 400 message")

    # Purge the path with "delete": the next edge request is a MISS, the history lists it.
    paths.clear()
    paths.send_keys(path)
    by_label(browser, "Delete").click()
    button(browser, "Purge").click()
    until(browser, lambda d: text_of(d, "#purge-status").startswith("Zone Purged"), "answer")
    assert text_of(browser, "#purge-error") == ""
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"
    history = "#history tbody tr[data-purge-id]"
    until(browser, lambda d: path in text_of(d, history), "the purge in the history")
    purge_id, *rest = texts_of(browser, f"{history}:first-child td")
    assert rest[1:] == [path, "delete", "1"]
    assert f"purge {purge_id}," in text_of(browser, "#purge-status")
    until(browser, lambda d: cell("requests")(d) == "4", "the MISS after the purge counted")
    screenshot(browser, "dashboard-purge.png")

    # The whole zone, once confirmed: sent without a body, listed as such.
    by_label(browser, "Type").send_keys(zone["alias"])
    until(browser, lambda d: whole.is_enabled(), "the whole-zone button enabled")
    whole.click()
    until(browser, lambda d: not whole.is_enabled(), "the whole-zone button disabled after")
    until(browser, lambda d: "whole zone" in text_of(d, history), "the whole-zone purge listed")
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"  # "delete" still ticked
    assert not [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]

    # Sign out: back to the key form, the key gone from the tab.
    button(browser, "Sign out").click()
    until(browser, lambda d: d.find_element(By.ID, "login").is_displayed(), "the key form")
    assert session_key(browser) is None
    assert not browser.find_element(By.ID, "app").is_displayed()


@pytest.mark.zone(name="blocks")
def test_a_block_is_changed_through_its_settings_panel(
    browser: Chrome, server: Server, zone: Zone
) -> None:
    row = f'#zones tr[data-zone-id="{zone["id"]}"]'
    sign_in(browser, server, API_KEY)
    until(browser, lambda d: zone["fqdn"] in text_of(d, row), "the zone in the zones table")
    browser.find_element(By.CSS_SELECTOR, f"{row} button").click()
    until(browser, lambda d: d.find_element(By.ID, "zone-panel").is_displayed(), "zone panel")
    Select(browser.find_element(By.ID, "block-select")).select_by_visible_text("domainlock")
    until(browser, lambda d: d.find_elements(By.ID, "block-list"), "the domainlock fields")
    assert "active: N" in text_of(browser, "#block-fields")  # read-only: shown, not edited

    # A refusal is shown as the API words it, and nothing changes.
    listed = browser.find_element(By.ID, "block-list")
    listed.clear()
    listed.send_keys("https://example.com/")
    button(browser, "Save").click()
    until(browser, lambda d: "domain only" in text_of(d, "#block-error"), "the 400 message")
    assert (
        server.api.get(f"/zones/http/pull/{zone['id']}").json()["zone"]["domainlock"]
        == (zone["domainlock"])
    )

    # A list and a flag saved through the block's route: the API has them.
    listed.clear()
    listed.send_keys("Example.com, example.org")
    browser.find_element(By.ID, "block-noreferer").click()
    button(browser, "Save").click()
    until(browser, lambda d: text_of(d, "#block-status").startswith("Zone updated"), "answer")
    assert text_of(browser, "#block-error") == ""
    stored = server.api.get(f"/zones/http/pull/{zone['id']}").json()["zone"]["domainlock"]
    assert (stored["list"], stored["noreferer"]) == ("example.com,example.org", "Y")
    assert browser.find_element(By.ID, "block-list").get_attribute("value") == (
        "example.com,example.org"
    )


@pytest.mark.timeout(150)
def test_in_a_cluster_each_node_and_the_total_are_shown(
    browser: Chrome, tmp_path: Path, origin: Origin, path: str
) -> None:
    nats = NatsServer(tmp_path, "nats").start()
    api = cluster_node(tmp_path, "api-1", "all", [nats.url])
    edge = cluster_node(tmp_path, "edge-1", "edge", [nats.url])
    origin.route(PROBE, Reply(headers=[("Cache-Control", "no-store")], body=b"probe"))
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=3600")], body=b"cluster\n"))
    try:
        with running([api, edge]):
            zone = new_zone(api, origin, [api, edge])
            for server, times in ((api, 3), (edge, 2)):  # a MISS, then HITs
                for _ in range(times):
                    assert server.get(zone["fqdn"], path).status_code == 200

            def answer() -> dict[str, Any] | None:
                body = api.api.get("/stats").json()
                hits = {n: f["zones"][0]["hits"] for n, f in body["nodes"].items()}
                return body if hits == {"api-1": 2, "edge-1": 1} else None

            body = poll(answer, 15, "both nodes' hits in the API's answer")
            requests = {n: f["zones"][0]["requests"] for n, f in body["nodes"].items()}

            sign_in(browser, api, API_KEY)
            cells = '#nodes tr[data-node="{}"] [data-field="requests"]'
            for name, n in (*requests.items(), ("Cluster total", sum(requests.values()))):
                until(
                    browser,
                    lambda d, name=name, n=n: text_of(d, cells.format(name)) == str(n),
                    f"{n} requests of {name} in the nodes table",
                )
            assert text_of(browser, "#unreachable") == ""
            row = f'#zones tr[data-zone-id="{zone["id"]}"] [data-field="requests"]'
            until(browser, lambda d: text_of(d, row) == str(sum(requests.values())), "the sum")

            # One node's figures: the zones table and the chart are that node's.
            Select(by_label(browser, "Node")).select_by_visible_text("edge-1")
            until(browser, lambda d: text_of(d, row) == str(requests["edge-1"]), "edge-1's")
            until(
                browser,
                lambda d: "Last hour, all zones on edge-1: HIT 1" in text_of(d, "#chart-summary"),
                "edge-1's chart",
            )
            Select(by_label(browser, "Span")).select_by_visible_text("Last 7 days")
            until(
                browser,
                lambda d: "Last 7 days, all zones on edge-1: HIT 1" in text_of(d, "#chart-summary"),
                "edge-1's week",
            )
    finally:
        nats.stop()
