"""Every error answer is `{"result": "error", "message": "<what is wrong and how to fix it>"}`
(README, Zones).

| status | when |
|---|---|
| 400 | malformed JSON, invalid fields, unknown fields, a zone id that is not a positive integer |
| 401 | missing or unknown `X-API-Key` |
| 403 | the key may not do this (to this zone) |
| 404 | no such zone or certificate, no such route |
| 405 | a method the route does not have (with `Allow`) |
| 409 | a certificate a zone uses cannot be deleted |
| 413 | a body over 1 MiB |
| 415 | a body that is not JSON |
| 429 | the key made more calls than its rate limit allows (with `Retry-After`) |
| 500 | a bug: a generic message here, the traceback in the server log only |

401 and 403 answers also carry 5centscdn's shape beside ours, the same message in both
(5centscdn's Authentication page):
`{"result": "error", "message": M, "status": "error", "errors": [{"code": 401, "message": M}]}`.

Nothing a client sends produces a 500, and no answer carries a traceback or echoes more
than a short piece of the input.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pullzone.refusal import Reason, Refused

log = logging.getLogger("pullzone.api")

MAX_ERRORS = 5  # validation problems listed in one message
MAX_MESSAGE = 1000


class ApiError(Exception):
    """An answer other than success, with the status and message the client gets."""

    status = 400

    def __init__(
        self, message: str, *, status: int | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class RateLimited(ApiError):
    """429: the key's calls are over `rate` per second; `wait` seconds until the next one
    may go (rounded up to whole seconds in the message and in `Retry-After`)."""

    status = 429

    def __init__(self, rate: float, wait: float) -> None:
        retry = max(1, math.ceil(wait))
        super().__init__(
            f"rate limit exceeded: at most {rate:.10g} requests per second per key; "
            f"retry after {retry} s",
            headers={"Retry-After": str(retry)},
        )
        self.retry_after = retry


STATUS_OF_REFUSAL: dict[Reason, int] = {
    Reason.INVALID: 400,
    Reason.CONFLICT: 400,  # the v2 API has no 409: a taken alias or hostname is a bad request
    Reason.NOT_FOUND: 404,
    Reason.TOO_LARGE: 413,
    Reason.UNSUPPORTED_MEDIA: 415,
    Reason.FAILED: 500,
    Reason.UNAVAILABLE: 503,
}


AUTH_STATUSES = (401, 403)  # answered in 5centscdn's shape too


def error_body(status: int, message: str) -> dict[str, Any]:
    """The body of an error answer: ours, and 5centscdn's beside it for 401 and 403."""
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    body: dict[str, Any] = {"result": "error", "message": message}
    if status in AUTH_STATUSES:
        body["status"] = "error"
        body["errors"] = [{"code": status, "message": message}]
    return body


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


# --- pydantic errors in one readable line ---------------------------------------------

_PLAIN = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "tuple_type": "must be a JSON array",
}


def _where(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "path", "query", "header")]
    return ".".join(parts)


def _problem(error: Mapping[str, Any], known_fields: Mapping[str, Sequence[str]]) -> str:
    where = _where(error.get("loc", ()))
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        parent = where.rpartition(".")[0]
        allowed = known_fields.get(parent)
        hint = f"; accepted: {', '.join(allowed)}" if allowed else ""
        return f"unknown field {where!r}{hint}"
    if kind == "value_error":
        text = str(error.get("msg", "")).removeprefix("Value error, ")
    elif kind == "literal_error":
        text = f"must be {error.get('ctx', {}).get('expected', 'one of the listed values')}"
    elif kind in _PLAIN:
        text = _PLAIN[kind]
    else:
        text = str(error.get("msg", "is invalid"))
    if not where:
        return text
    return text if text.startswith(f"{where}:") else f"{where}: {text}"


def validation_message(
    errors: Sequence[Mapping[str, Any]],
    known_fields: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Pydantic's errors as one line naming each field; never the input itself.

    `known_fields` maps a dotted parent ("" for the top level, "cache" for the block)
    to the fields accepted there, listed after an unknown field.
    """
    problems: list[str] = []
    for error in errors:
        problem = _problem(error, known_fields or {})
        if problem not in problems:
            problems.append(problem)
    shown = problems[:MAX_ERRORS]
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more else "")


# --- handlers --------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return error_response(STATUS_OF_REFUSAL[exc.reason], exc.message)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str:
    """The methods the target resource supports (RFC 9110 §10.2.1), as the OpenAPI document
    lists them: only the most specific path templates count, so `/zones/http/pull/new`
    (POST) is not also a `{zoneid}` that happens to match. Paths outside the document
    (the docs page) fall back to every method some route has (Starlette names only the
    first route's)."""
    path = request.url.path
    candidates: list[tuple[int, list[str]]] = []
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            candidates.append((template.count("{"), [m.upper() for m in item]))
    if candidates:
        fewest = min(params for params, _ in candidates)
        listed = {m for params, methods in candidates if params == fewest for m in methods}
        return ", ".join(m for m in _METHODS if m in listed)
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        message = (
            f"no such route: {method} {path}; the API is under /v2/zones/http/pull, "
            "/v2/account/ssl, /v2/account/api and /v2/keys (see /v2/openapi.json)"
        )
    elif exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers = {"Allow": allowed}
        message = f"{method} is not allowed on {path}; use {allowed}"
        return error_response(405, message, headers)
    else:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
    return error_response(exc.status_code, message, exc.headers)


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, validation_message(exc.errors()))


class CatchUnexpected:
    """The last net: an exception nobody handled becomes a 500 with a generic message;
    its traceback goes to the server log only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = error_response(
                500, "internal error: the server could not answer; its log has the details"
            )
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_middleware(CatchUnexpected)
