"""The OpenAPI document at `/v2/openapi.json`, accurate about what the API really does.

Bodies are read and validated by `deps.json_body` (so that the key is checked before the
body, and errors have our shape), which FastAPI cannot see: `request_body(Model)` documents
them, and `build` adds their schemas. FastAPI's own 422 answers never happen here (every
validation problem is a 400), so they are replaced by the error answers routes declare with
`errors(...)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from pullzone.control.errors import AUTH_STATUSES
from pullzone.control.schemas import AuthErrorAnswer, ErrorAnswer, RequestSchema

_REQUEST_MODELS: dict[str, type[BaseModel]] = {}

_ERROR_DESCRIPTIONS = {
    400: "Malformed or invalid input, or a zone id that is not a positive integer.",
    401: "Missing or unknown X-API-Key (in 5centscdn's shape too: `status`, `errors`).",
    403: "The key may not do this (to this zone) (in 5centscdn's shape too: `status`, `errors`).",
    404: "No such zone (under /v2/keys and /v2/account/api: no such live key; under "
    "/v2/account/ssl: no such certificate).",
    409: "The certificate is in use: a zone's ssl.certid names it.",
    413: "The body is larger than 1 MiB.",
    415: "The body is not JSON.",
    429: "The key made more calls than its rate limit allows; retry after `Retry-After` seconds.",
    500: "A server fault; the message is generic, details are in the server log.",
    503: "Cluster mode: the bus (NATS JetStream) is unreachable; the change is not confirmed.",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole seconds until the key may call again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may answer these error statuses.

    A route that checks the key (401) is rate limited too: 429 is added with it.
    """
    every = (*statuses, *((429,) if 401 in statuses else ()), 500)
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(every)):
        response: dict[str, Any] = {
            "model": AuthErrorAnswer if status in AUTH_STATUSES else ErrorAnswer,
            "description": _ERROR_DESCRIPTIONS[status],
        }
        if status == 429:
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    return responses


FORM = "application/x-www-form-urlencoded"
# An operation's form body is documented under this key until `build` has the components
# to spell it out (`form_schema`).
_FORM_OF = "x-pullzone-form-of"


def form_of(schema: dict[str, Any]) -> dict[str, Any]:
    """The form content of a hand-written request body whose JSON schema is `schema`."""
    return {"schema": {_FORM_OF: schema}}


def request_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """The `openapi_extra=` of a route whose body `deps.json_body(model)` reads: JSON, or
    the same fields as a form in PHP's array syntax (control/body.py)."""
    _REQUEST_MODELS[model.__name__] = model
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    body: dict[str, Any] = {
        "required": True,
        "content": {"application/json": {"schema": ref}, FORM: {"schema": {_FORM_OF: ref}}},
    }
    if description:
        body["description"] = description
    return {"requestBody": body}


def build(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _REQUEST_MODELS.items():
        model_schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}", schema_generator=RequestSchema
        )
        components.update(model_schema.pop("$defs", {}))
        components[name] = model_schema
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            operation.get("responses", {}).pop("422", None)
            form = operation.get("requestBody", {}).get("content", {}).get(FORM)
            if form is not None and _FORM_OF in form["schema"]:
                form["schema"] = form_schema(form["schema"][_FORM_OF], components)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def form_schema(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """`schema` (an object's JSON Schema) as a form's fields: nested objects and lists in
    PHP's array syntax (`cache[cache]`, `files[]`), as control/body.py reads them. A
    field that is a string or a list is documented as a string (the comma-separated form);
    free-form objects (5centscdn blocks accepted only when off) are left out."""
    resolved = _resolved(schema, components)
    properties: dict[str, Any] = {}
    for name, sub in resolved.get("properties", {}).items():
        _flatten(name, sub, components, properties)
    form: dict[str, Any] = {"type": "object", "properties": properties}
    if "additionalProperties" in resolved:
        form["additionalProperties"] = resolved["additionalProperties"]
    required = [name for name in resolved.get("required", []) if name in properties]
    if required:
        form["required"] = required
    return form


def _resolved(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        found: dict[str, Any] = components[schema["$ref"].rsplit("/", 1)[1]]
        return found
    options = [o for o in schema.get("anyOf", ()) if o.get("type") != "null"]
    if options:
        text = [o for o in options if o.get("type") == "string"]
        chosen = {**schema, **(text or options)[0]}
        chosen.pop("anyOf")
        return _resolved(chosen, components)
    return schema


def _flatten(
    name: str, schema: dict[str, Any], components: dict[str, Any], out: dict[str, Any]
) -> None:
    resolved = _resolved(schema, components)
    kind = resolved.get("type")
    if kind == "object":
        for inner, sub in resolved.get("properties", {}).items():
            _flatten(f"{name}[{inner}]", sub, components, out)
    elif kind == "array":
        # A form cannot send an empty list (it sends no field), nor tell a list of one
        # from a single value (`tags[]=a`): one item stands for a list of it.
        listed = {k: v for k, v in resolved.items() if k != "minItems"}
        out[f"{name}[]"] = {"anyOf": [listed, resolved.get("items", {})]}
    elif resolved:
        out[name] = resolved
