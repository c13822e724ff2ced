"""The management API (CONTRACT §3) as an ASGI app: `create_app(settings, on_event)`.

Layout: `routes/` (thin handlers, one module per resource), `deps` (key, scope, zone and
body checks as FastAPI dependencies), `schemas` (what bodies may hold), `store` (zones and
their events in control.db), `keys` (API keys), `ratelimit` (per-key rate limits), `errors`
(the error answers), `openapi`.

Every route runs on the event loop, and the SQLite calls it makes are short local writes:
one connection, no threads, so no two transactions ever interleave.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from pullzone import __version__
from pullzone.bus.events import Event
from pullzone.config import Settings
from pullzone.control import errors, history, keys, openapi
from pullzone.control.deps import Control
from pullzone.control.routes import keys as key_routes
from pullzone.control.routes import purge, zones
from pullzone.control.store import ZoneStore
from pullzone.sqlite import connect

DESCRIPTION = """\
Management API of pullzone, a self-hosted CDN for HTTP pull zones, wire-compatible with
the 5centscdn v2 API for HTTP pull zones. Every call needs the header `X-API-Key`.
Every error answers `{"result": "error", "message": "…"}`.
"""


def create_app(settings: Settings, on_event: Callable[[Event], Awaitable[int | None]]) -> FastAPI:
    """The API app, with its own connection to `settings.control_db`.

    `on_event` is awaited with each committed event before the answer is sent (the
    server applies it to the cache and signals the edge workers).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = connect(settings.control_db)
    keys.create_schema(conn)
    history.create_schema(conn)
    store = ZoneStore(conn, settings.edge_domain)

    app = FastAPI(
        title="pullzone",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/v2/openapi.json",
        docs_url="/v2/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.control = Control(settings, conn, store, on_event)
    errors.install(app)
    app.include_router(zones.router, prefix="/v2")
    app.include_router(purge.router, prefix="/v2")
    app.include_router(key_routes.router, prefix="/v2")

    def build_openapi() -> dict[str, Any]:
        return openapi.build(app)

    app.openapi = build_openapi  # type: ignore[method-assign]
    return app
