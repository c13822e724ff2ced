"""Schemathesis against our own `/v2/openapi.json`, on a live `pullzone serve`.

`schemathesis run` (a real process, as CI or an operator would run it) exercises every
operation of the spec in all four phases: the spec's examples, coverage (boundary and
schema-violating values of every parameter and body field, missing and wrong auth,
undocumented methods), random fuzzing, and stateful sequences that follow one answer's
ids into the next call. Deterministic generation and a bounded number of examples keep it
reproducible and well under a minute. Every check is on: no 5xx, every status documented,
every answer matching its schema, content type and headers, schema-invalid input refused,
schema-valid input accepted, auth enforced, `Allow` right on 405.

The server is a private one: the fuzzer creates, changes and deletes zones and keys.
docs/hardening.md lists what a run covers and what it found.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from certs_support import issued
from origin import Origin
from server import API_KEY, Server

MAX_EXAMPLES = 40  # per operation and phase

# Statuses beyond schemathesis' defaults, each for a reason the schema cannot express.
CONFIG = """
[checks.negative_data_rejection]
# A schema-violating body over 1 MiB (e.g. more than 10,000 files) is refused by its size
# first: 413 is a rejection too.
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

# Schema-valid requests refused for the state they meet, with the API's 400 for bad input:
# an alias another zone has, `zones` naming zones that do not exist, the admin key id
# reached through `GET /v2/keys` in a stateful sequence (the admin key is never revoked).
[[operations]]
include-path-regex = "^/v2/zones/http/pull/(new|\\\\{zoneid\\\\})$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 409, 429]

[[operations]]
include-path = "/v2/keys"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 409, 429]

[[operations]]
include-path = "/v2/keys/{keyid}"
include-method = "DELETE"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 409, 429]

# 5centscdn's key routes: id 1 is the admin key, which is never changed or deleted (400).
[[operations]]
include-path = "/v2/account/api/{apikeyid}"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 409, 429]

# Certificates: a schema-valid `crt` is a PEM certificate only by chance, a `certid` names
# a certificate only if one exists, and `enabled: Y` needs one: 400s for what the schema
# cannot say; a certificate a zone uses is a 409 to delete.
[[operations]]
include-path-regex = "^/v2/account/ssl"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 409, 429]

[[operations]]
include-path = "/v2/zones/http/pull/{zoneid}/ssl"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 409, 429]

# Stats: `from` and `to` are strings to the schema; one that is not a time, or two that
# make no span the API answers (from not before to, more than 7 days apart), are a 400.
[[operations]]
include-path = "/v2/stats"
include-method = "GET"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 429]
"""


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, origin: Origin) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("fuzz") / "data", workers=1).start()
    # Something for the fuzzer's ids to find: a zone, a key limited to it, a key of
    # 5centscdn's key routes, a purge, a certificate.
    zone = s.create_zone(origin.url, alias="fuzzed", cnames="fuzz.example")
    assert s.api.post("/keys", json={"name": "k", "zones": [zone["id"]]}).status_code == 200
    account_key = {"name": "k2", "permission[]": ["read", "update"]}
    assert s.api.post("/account/api/new", json=account_key).status_code == 200
    assert s.purge(zone["id"], ["/a"]).status_code == 200
    pem = issued("fuzzed.localhost")
    cert = {"name": "c", "crt": pem.crt, "key": pem.key}
    assert s.api.post("/account/ssl/new", json=cert).status_code == 200
    yield s
    s.stop()


@pytest.fixture(scope="module")
def fuzz_run(fuzz_server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One schemathesis run: its exit code, output, JSON report and every exchange (HAR)."""
    out = tmp_path_factory.mktemp("schemathesis")
    (out / "schemathesis.toml").write_text(CONFIG)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(out / "schemathesis.toml"),
        "run",
        f"{fuzz_server.api_url}/openapi.json",
        "--header",
        f"X-API-Key: {API_KEY}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--report",
        "json,har",
        "--report-dir",
        str(out),
        "--no-color",
        "--output-truncate",
        "true",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=out)
    [report] = out.glob("json-*.json")
    [har] = out.glob("har-*.json")
    return {
        "returncode": done.returncode,
        "output": done.stdout + done.stderr,
        "report": json.loads(report.read_text()),
        "entries": json.loads(har.read_text())["log"]["entries"],
        "server_log": fuzz_server.output(),
    }


def test_schemathesis_finds_nothing(fuzz_run: dict[str, Any]) -> None:
    report = fuzz_run["report"]
    output = fuzz_run["output"][-20000:]  # schemathesis' account of each failure
    assert (fuzz_run["returncode"], report["failures"], report["errors"]) == (0, [], []), output
    assert report["complete"] and report["stop_reason"] == "completed"


def test_every_operation_and_phase_ran(fuzz_run: dict[str, Any]) -> None:
    report = fuzz_run["report"]
    operations = report["operations"]
    assert operations["tested"] == operations["selected"] == operations["total"] >= 11
    assert {p: v["status"] for p, v in report["phases"].items()} == dict.fromkeys(
        ("examples", "coverage", "fuzzing", "stateful"), "success"
    )
    assert report["test_cases"]["generated"] >= 500


def test_no_answer_was_a_5xx_or_a_traceback(fuzz_run: dict[str, Any]) -> None:
    """Counted again from every exchange the run recorded, independently of its checks."""
    statuses = Counter(e["response"]["status"] for e in fuzz_run["entries"])
    assert not {s for s in statuses if s >= 500 or s == 0}, statuses
    assert "Traceback" not in fuzz_run["server_log"]
    for entry in fuzz_run["entries"]:
        text = entry["response"]["content"].get("text") or ""
        assert "Traceback" not in text and 'File "' not in text, entry["request"]["url"]


def test_the_fuzzer_reached_past_validation(fuzz_run: dict[str, Any]) -> None:
    """Not only 400s: each kind of call also succeeded, so the handlers behind the
    validation were exercised too."""
    succeeded = {
        (e["request"]["method"], _route(e["request"]["url"]))
        for e in fuzz_run["entries"]
        if e["response"]["status"] == 200
    }
    for expected in [
        ("GET", "/v2/zones/http/pull"),
        ("POST", "/v2/zones/http/pull/new"),
        ("GET", "/v2/zones/http/pull/{zoneid}"),
        ("POST", "/v2/zones/http/pull/{zoneid}/purge"),
        ("GET", "/v2/keys"),
        ("POST", "/v2/keys"),
        ("GET", "/v2/account/api"),
        ("POST", "/v2/account/api/new"),
    ]:
        assert expected in succeeded, (expected, sorted(succeeded))


def _route(url: str) -> str:
    parts = urlsplit(url).path.split("/")
    if len(parts) > 5 and parts[1:5] == ["v2", "zones", "http", "pull"] and parts[5] != "new":
        parts[5] = "{zoneid}"
    if len(parts) > 3 and parts[1:3] == ["v2", "keys"]:
        parts[3] = "{keyid}"
    return "/".join(parts)
