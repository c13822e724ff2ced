"""Secondary cache keys from Vary (RFC 9111 §4.1)."""

from __future__ import annotations

from functools import lru_cache

from pullzone.spec.headers import HeaderMap, split_list


@lru_cache(maxsize=512)
def _names(value: str) -> tuple[str, ...] | None:
    names = {name.lower() for name in split_list(value)}
    if "*" in names:
        return None
    return tuple(sorted(names))


def vary_names(resp: HeaderMap) -> tuple[str, ...] | None:
    """The field names the response varies on, lower-cased, unique and sorted; () without
    Vary; None when Vary lists "*", which never matches a later request (RFC 9111 §4.1)."""
    value = resp.get("vary")
    if not value:
        return ()
    return _names(value)


def _normalise(value: str) -> str:
    # RFC 9111 §4.1: values may be normalised where the field's syntax allows it; as list
    # members, whitespace around commas (and empty members) do not change the meaning.
    if "," not in value:
        return value.strip(" \t")
    return ", ".join(split_list(value))


def vary_values(names: tuple[str, ...], req: HeaderMap) -> tuple[str | None, ...]:
    """The request's values of `names`, normalised; None for an absent field (which
    matches only another absent field, RFC 9111 §4.1)."""
    out: list[str | None] = []
    for name in names:
        value = req.get(name)
        out.append(None if value is None else _normalise(value))
    return tuple(out)
