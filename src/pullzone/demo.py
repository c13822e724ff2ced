"""`pullzone demo`: a sample origin, a server and one zone, with the curl lines to try."""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pullzone import defaults
from pullzone.config import Settings, split_host_port
from pullzone.server import supervisor

SAMPLE_FILES = {
    "/hello.txt": (b"Hello from the demo origin!\n", "text/plain; charset=utf-8"),
    "/images/logo.svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b'<circle cx="32" cy="32" r="30" fill="#2a7"/></svg>\n',
        "image/svg+xml",
    ),
    "/data.json": (b'{"demo": true, "items": [1, 2, 3]}\n', "application/json"),
}


class _SampleOrigin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        found = SAMPLE_FILES.get(path)
        if found is None:
            self.send_error(404)
            return
        body, content_type = found
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=3600")
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"  [origin] {self.command} {self.path}", flush=True)


def _create_zone(settings: Settings, key: str, origin: str) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}/v2"
    body = json.dumps({"name": "demo", "alias": "demo", "origin": origin}).encode()
    request = urllib.request.Request(
        f"{api}/zones/http/pull/new",
        data=body,
        method="POST",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    for _ in range(200):
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                zone = json.load(response)["zone"]
                break
        except OSError:
            time.sleep(0.1)
    else:
        print("pullzone demo: the API did not come up")
        return
    edge = f"http://{settings.edge_host}:{settings.edge_port}"
    host = zone["fqdn"]
    print(
        f"""
Zone {zone["id"]} "{zone["name"]}" serves {origin} as {host}. Try:

  curl -si -H 'Host: {host}' {edge}/hello.txt | grep -i x-cache     # X-Cache: MISS
  curl -si -H 'Host: {host}' {edge}/hello.txt | grep -i x-cache     # X-Cache: HIT
  curl -s -X POST "{api}/zones/http/pull/{zone["id"]}/purge?delete=true" \\
       -H "Content-Type: application/json" -H "X-API-Key: {key}" \\
       -d '{{"files": ["/hello.txt"]}}'
  curl -si -H 'Host: {host}' {edge}/hello.txt | grep -i x-cache     # X-Cache: MISS

Press Ctrl-C to stop.
""",
        flush=True,
    )


def run(data_dir: Path | None, edge: str, api: str) -> int:
    origin = ThreadingHTTPServer(("127.0.0.1", 0), _SampleOrigin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    origin_url = f"http://127.0.0.1:{origin.server_address[1]}"
    edge_host, edge_port = split_host_port(edge, defaults.EDGE_PORT)
    api_host, api_port = split_host_port(api, defaults.API_PORT)
    key = secrets.token_urlsafe(24)
    settings = replace(
        Settings(data_dir=data_dir or Path(tempfile.mkdtemp(prefix="pullzone-demo-"))),
        edge_host=edge_host,
        edge_port=edge_port,
        api_host=api_host,
        api_port=api_port,
        admin_key=key,
        workers=2,
    )
    print(f"sample origin on {origin_url}")
    threading.Thread(target=_create_zone, args=(settings, key, origin_url), daemon=True).start()
    try:
        return supervisor.run(settings)
    finally:
        origin.shutdown()
