"""Form bodies as a PHP client sends them (`http_build_query`): `a[b]=c` for objects,
`list[]=x` for lists, `true`/`false` as `1`/`0`; `null` and empty lists are left out, as
PHP leaves them out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

FORM = "application/x-www-form-urlencoded"


def pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in data.items():
        _add(out, name, value)
    return out


def _add(out: list[tuple[str, str]], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            _add(out, f"{name}[{key}]", inner)
    elif isinstance(value, list):
        # A key that already ends in [] (5centscdn's "permission[]") is repeated as it is.
        each = name if name.endswith("[]") else f"{name}[]"
        for inner in value:
            _add(out, each, inner)
    elif isinstance(value, bool):
        out.append((name, "1" if value else "0"))
    else:
        out.append((name, str(value)))


def encode(data: dict[str, Any]) -> str:
    return urlencode(pairs(data))
