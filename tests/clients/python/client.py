"""A 5centscdn customer's Python client, in the style of 5centscdn's API reference
examples (requests, `json=`, `X-API-Key`).

    python client.py BASE_URL API_KEY ORIGIN_URL           create, read, update, cache, ssl
    python client.py BASE_URL API_KEY ORIGIN_URL ZONE_ID   purge files, purge the zone
"""

import sys
from typing import Any

import requests

base, key, origin = sys.argv[1:4]
zoneid = sys.argv[4] if len(sys.argv) > 4 else None
headers = {"Content-Type": "application/json", "X-API-Key": key}


def call(method: str, path: str, data: Any = None, message: str | None = None) -> Any:
    response = requests.request(method, base + path, headers=headers, json=data, timeout=30)
    print(f"> {method} {response.request.url}")
    if body := response.request.body:
        print(f"> {body.decode() if isinstance(body, bytes) else body}")
    print(f"< {response.status_code}\n< {response.text}\n", flush=True)
    answer = response.json()
    if (
        response.status_code != 200
        or answer.get("result") != "success"
        or (message is not None and answer.get("message") != message)
    ):
        sys.exit(f"unexpected answer to {method} {path}")
    return answer


if zoneid is None:
    new = {"_METHOD": "PUT", "alias": "python-client", "origin": origin, "optimize": "http"}
    zoneid = call("POST", "/zones/http/pull/new", new)["zone"]["id"]
    call("GET", f"/zones/http/pull/{zoneid}")
    call("GET", "/zones")
    updated = "Zone updated successfully"
    cname = {"origin": origin, "cname": "python.clients.test"}
    call("POST", f"/zones/http/pull/{zoneid}", cname, updated)
    call("POST", f"/zones/http/pull/{zoneid}/cache", {"cache": "1h", "expiry": "1d"}, updated)
    ssl = {"http2": "Y", "redirect": "N", "mode": "S"}
    call("POST", f"/zones/http/pull/{zoneid}/ssl", ssl, updated)
else:
    files = {"files": ["/clients/a.css", "/clients/c.css"]}
    call("POST", f"/zones/http/pull/{zoneid}/purge", files, "Zone Purged")
    call("POST", f"/zones/http/pull/{zoneid}/purge", None, "Zone Purged")
