"""Purge routes (CONTRACT §4): the place for

- `POST /v2/zones/http/pull/{zoneid}/purge[?delete=true]` — the seed; and
- `GET /v2/zones/http/pull/{zoneid}/purges` — purge history, newest first.

Not implemented yet; until then these paths answer 404 like any unknown route. Build them
from what is here: `deps.zone_for("purge")` (key, zone id, scope and existence checks),
`zones.purge.parse_delete` / `parse_body` / `plan_purge` for the request (they raise
PurgeError with the status to answer), `bus.local.append(conn, PURGE, zone_id, plan)`
inside `sqlite.transaction(ctl.conn)`, then `await ctl.publish(event)` before answering
`{"result": "success", "message": "Zone Purged"}`; `openapi.request_body` documents the
body and `openapi.errors(...)` the error answers.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/zones/http/pull", tags=["purge"])
