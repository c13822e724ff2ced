"""The dashboard (our extension): one static page at `/` and `/dashboard`, its script and
style under `/static/`. Served without a key: the page asks for one and calls the public
API with it (`/v2/zones/http/pull`, `/v2/stats`, the purge routes), so it can do nothing
its key could not do with curl.

The files ship inside the package (`pullzone/control/static/`, package data) and are read
with `importlib.resources`; no build step. The HTML is never cached and carries a strict
Content-Security-Policy: scripts and styles from this origin only, nothing inline.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Response

from pullzone.control.errors import NotFound

router = APIRouter(include_in_schema=False)

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


@cache
def _read(name: str) -> bytes:
    return resources.files("pullzone.control").joinpath("static", name).read_bytes()


@router.api_route("/", methods=["GET", "HEAD"])
@router.api_route("/dashboard", methods=["GET", "HEAD"])
async def page() -> Response:
    return Response(
        _read("dashboard.html"),
        media_type="text/html; charset=utf-8",
        headers={**HEADERS, "Cache-Control": "no-store"},
    )


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
async def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no such file: /static/{name[:100]}")
    return Response(
        _read(name), media_type=media_type, headers={**HEADERS, "Cache-Control": "no-cache"}
    )
