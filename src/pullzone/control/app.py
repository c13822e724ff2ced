"""The management API (README, Zones) as an ASGI app: `create_app(settings, on_event)`.

Layout: `routes/` (thin handlers, one module per resource), `deps` (key, scope, zone and
body checks as FastAPI dependencies), `schemas` (what bodies may hold), `log` (where
changes are committed), `replica` (control.db as the log applied), `store` (zones in
control.db), `keys` (API keys), `history` (purges), `certs` (account certificates),
`ratelimit` (per-key rate limits), `errors` (the error answers), `openapi`.

Every route runs on the event loop, and the SQLite calls it makes are short local writes:
one connection, no threads, so no two transactions ever interleave.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from pullzone import __version__
from pullzone.bus import local
from pullzone.config import Settings
from pullzone.control import errors, openapi, replica
from pullzone.control.deps import Control, GatherStats
from pullzone.control.log import EventLog
from pullzone.control.metrics import ApiMetrics
from pullzone.control.routes import account_keys, dashboard, prefetch, purge, ssl, zones
from pullzone.control.routes import keys as key_routes
from pullzone.control.routes import stats as stats_routes
from pullzone.control.stats import NodeStats
from pullzone.control.stats_recorder import Recorder
from pullzone.sqlite import connect

DESCRIPTION = """\
Management API of pullzone, a self-hosted CDN for HTTP pull zones, wire-compatible with
the 5centscdn v2 API for HTTP pull zones. Every call needs the header `X-API-Key`.
Every error answers `{"result": "error", "message": "…"}`; 401 and 403 answers also
carry 5centscdn's `"status": "error"` and `"errors": [{"code": …, "message": …}]`.
"""


def create_app(
    settings: Settings,
    log: EventLog,
    *,
    recorder: Recorder | None = None,
    cluster_stats: GatherStats | None = None,
) -> FastAPI:
    """The API app, reading control.db on a connection of its own; every change goes
    through `log` (a `LocalLog` on a single node) before the answer is sent. `recorder`
    keeps the node's traffic history; `cluster_stats` asks a cluster's edges for theirs."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = connect(settings.control_db, private=True)
    store = replica.create_schema(conn, settings.edge_domain)

    app = FastAPI(
        title="pullzone",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/v2/openapi.json",
        docs_url="/v2/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    stats = NodeStats(settings)
    if recorder is not None:
        stats.more_write_failures.append(recorder.writes)
    metrics = ApiMetrics(
        stats,
        lambda: local.quarantined_count(conn),
        getattr(log, "lags", None),  # a cluster node's log has lags
    )
    app.state.control = Control(
        settings, conn, store, log, stats, metrics, recorder=recorder, cluster_stats=cluster_stats
    )
    errors.install(app)
    app.include_router(zones.router, prefix="/v2")
    app.include_router(zones.every_zone, prefix="/v2")
    app.include_router(purge.router, prefix="/v2")
    app.include_router(prefetch.router, prefix="/v2")
    app.include_router(key_routes.router, prefix="/v2")
    app.include_router(ssl.router, prefix="/v2")
    app.include_router(account_keys.router, prefix="/v2")
    app.include_router(stats_routes.router)
    app.include_router(dashboard.router)

    def build_openapi() -> dict[str, Any]:
        return openapi.build(app)

    app.openapi = build_openapi  # type: ignore[method-assign]
    return app
