"""Request bodies as one JSON-like object, from JSON or from an HTML form (docs/api.md,
"Request bodies").

5centscdn's own clients send forms: its WordPress plugin posts Guzzle `form_params`, which
PHP's `http_build_query` spells with PHP's array syntax (`files[0]=a`, `files[]=b`,
`cache[cache]=4h`, `ssl[enabled]=Y`). Both encodings decode to the same object, so every
route validates one shape. Form values stay strings; the models read `"5"` as 5 where a
number is asked for, as they do for JSON.

Where PHP is lenient and a mistake would go unnoticed, this is strict: a field sent twice
(`alias=a&alias=b`, which PHP reads as the last) is a 400, as is a field that is both a
value and a list (`a=1&a[]=2`), a malformed bracket, or a JSON body sent with a form
Content-Type. JSON objects with a repeated name are refused for the same reason.

`_METHOD` (5centscdn's method override, in either encoding) is taken out here and checked
against the methods the route accepts (`method_of`).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from pullzone.refusal import Reason, Refused
from pullzone.text import invalid_text

FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 20_000  # more than a purge's 10,000 files, so that limit speaks first
MAX_DEPTH = 4  # a[b][c][d]: deeper than any block

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json`."""
    return (content_type or "").split(";")[0].strip().lower()


def is_json(media: str) -> bool:
    # No Content-Type at all: JSON, as most clients mean it (curl -d sends form, and says so).
    return media in ("", "application/json") or (
        media.startswith("application/") and media.endswith("+json")
    )


def decode(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as an object; `{}` when it is empty. Raises Refused: 415 for a media
    type other than JSON or a form, 400 for a malformed body, 413 for too many fields."""
    if not raw.strip():
        return {}
    media = media_type(content_type)
    if is_json(media):
        data = _json(raw)
    elif media == FORM:
        data = _form(raw)
    else:
        raise Refused(
            Reason.UNSUPPORTED_MEDIA,
            f"a body of type {media!r} cannot be read: send application/json or "
            f"{FORM} (with its Content-Type header)",
        )
    not_text = invalid_text(data)
    if not_text is not None:
        raise Refused(Reason.INVALID, not_text)
    return data


def method_of(data: dict[str, Any], allowed: tuple[str, ...], route: str) -> str:
    """`_METHOD` of the body, taken out of it (upper-cased; `POST` when absent); a value
    that is not one of `allowed` is a 400 naming the route."""
    value = data.pop("_METHOD", "POST")
    method = value.strip().upper() if isinstance(value, str) else value
    if method == "POST" or method in allowed:
        return str(method)
    shown = repr(value) if not isinstance(value, str) else value
    accepted = ", ".join(("POST", *allowed))
    raise Refused(
        Reason.INVALID,
        f"_METHOD {shown[:20]} does not fit {route}: send {accepted}, or leave _METHOD out",
    )


# --- JSON ------------------------------------------------------------------------------


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in pairs:
        if name in data:
            raise Refused(Reason.INVALID, f"malformed JSON: {name[:60]!r} is given twice")
        data[name] = value
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw, parse_constant=_reject_constant, object_pairs_hook=_unique_names)
    except json.JSONDecodeError as exc:
        raise Refused(
            Reason.INVALID, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError:
        raise Refused(Reason.INVALID, "malformed JSON: the body is not UTF-8") from None
    except RecursionError:
        raise Refused(Reason.INVALID, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, integers with too many digits
        raise Refused(Reason.INVALID, f"malformed JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise Refused(
            Reason.INVALID, f"the body must be a JSON object, not a JSON {type(data).__name__}"
        )
    return data


# --- forms -----------------------------------------------------------------------------


def _form(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(Reason.INVALID, "malformed form body: it is not UTF-8") from None
    if text.lstrip().startswith("{"):
        raise Refused(
            Reason.INVALID,
            f"the body is JSON but its Content-Type says {FORM}: send it with "
            "Content-Type: application/json",
        )
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise Refused(Reason.INVALID, "malformed form body: a %-escape is not UTF-8 text") from None
    except ValueError as exc:
        if "Max number of fields" in str(exc):
            raise Refused(
                Reason.TOO_LARGE, f"the form has more than {MAX_FORM_FIELDS} fields"
            ) from None
        raise Refused(
            Reason.INVALID, "malformed form body: expected name=value pairs joined by &"
        ) from None
    tree: dict[str, Any] = {}
    for name, value in pairs:
        _put(tree, _path(name), value, name)
    return _lists(tree)


def _path(name: str) -> list[str]:
    """`cache[cache]` → ["cache", "cache"]; `files[]` → ["files", ""]."""
    base, bracket, rest = name.partition("[")
    if not base:
        raise Refused(Reason.INVALID, f"malformed form field name {name[:60]!r}")
    if not bracket:
        return [base]
    rest = "[" + rest
    segments = _SEGMENT.findall(rest)
    if "".join(f"[{s}]" for s in segments) != rest:
        raise Refused(
            Reason.INVALID,
            f"malformed form field name {name[:60]!r}: use name[key] or name[] brackets",
        )
    if len(segments) > MAX_DEPTH:
        raise Refused(Reason.INVALID, f"form field {name[:60]!r} is nested too deeply")
    if "" in segments[:-1]:
        raise Refused(Reason.INVALID, f"form field {name[:60]!r}: [] may only come last")
    return [base, *segments]


def _put(node: dict[str, Any], path: list[str], value: str, name: str) -> None:
    *parents, last = path
    for segment in parents:
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise Refused(Reason.INVALID, f"form field {name[:60]!r} is both a value and a list")
        node = child
    if last == "":
        last = str(sum(1 for key in node if key.isdigit()))  # PHP: the next index
        while last in node:
            last = str(int(last) + 1)
    if last in node:
        raise Refused(
            Reason.INVALID, f"form field {name[:60]!r} is given twice: send each field once"
        )
    node[last] = value


def _lists(node: dict[str, Any]) -> dict[str, Any]:
    """Nested dicts whose keys are all indexes (`files[0]`, `files[]`) become lists, in
    index order."""
    for key, value in node.items():
        if isinstance(value, dict):
            inner = _lists(value)
            if inner and all(k.isdigit() and len(k) < 10 for k in inner):
                node[key] = [inner[k] for k in sorted(inner, key=int)]
            else:
                node[key] = inner
    return node
