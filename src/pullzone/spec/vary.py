"""Secondary cache keys from Vary (RFC 9111 §4.1)."""

from __future__ import annotations

from functools import lru_cache

from pullzone.spec.headers import HOP_BY_HOP, HeaderMap, connection_tokens, qvalue, split_list

# The codings a CDN's objects come in; every other Accept-Encoding member changes nothing.
_CODINGS = ("br", "gzip")
IDENTITY_ONLY = "identity"


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


def coding_weights(value: str) -> dict[str, float]:
    """Each coding of an Accept-Encoding value (lower-cased) with its q-value (RFC 9110
    §12.5.3); `x-gzip` counts as gzip (§8.4.1.3) when gzip is not named."""
    weights: dict[str, float] = {}
    for item in split_list(value):
        name, _, params = item.partition(";")
        weights[name.strip().lower()] = qvalue(params)
    if "gzip" not in weights and "x-gzip" in weights:
        weights["gzip"] = weights["x-gzip"]
    return weights


@lru_cache(maxsize=1024)
def accept_encoding(value: str | None) -> str:
    """Accept-Encoding reduced to what can change a response: the codings of `_CODINGS` the
    client accepts (q > 0, `*` standing for those it does not name, `x-gzip` for gzip: RFC
    9110 §12.5.3, §8.4.1.3), "br, gzip", "br", "gzip", or "identity" (also for no field).
    The edge sends the origin this value and keys `Vary: Accept-Encoding` variants on it
    (RFC 9111 §4.1 allows normalising), so browsers' hundred spellings make four variants,
    and each variant is the answer to exactly the field the origin was sent."""
    if not value:
        return IDENTITY_ONLY
    weights = coding_weights(value)
    star = weights.get("*", 0.0)
    accepted = [coding for coding in _CODINGS if weights.get(coding, star) > 0]
    return ", ".join(accepted) or IDENTITY_ONLY


def vary_values(names: tuple[str, ...], req: HeaderMap) -> tuple[str | None, ...]:
    """The request's values of `names`, normalised; None for an absent field (which
    matches only another absent field, RFC 9111 §4.1).

    A field that is not forwarded is absent for this purpose: hop-by-hop fields, and those
    the client nominated in Connection (RFC 9110 §7.6.1). The origin chose its answer
    without them, so keying the answer on the client's value would give every client with
    that value what the origin meant for requests without the field."""
    hop = HOP_BY_HOP | connection_tokens(req["connection"]) if "connection" in req else HOP_BY_HOP
    out: list[str | None] = []
    for name in names:
        value = None if name in hop else req.get(name)
        if name == "accept-encoding":
            out.append(accept_encoding(value))  # what the origin was sent (edge/origin.py)
        else:
            out.append(None if value is None else _normalise(value))
    return tuple(out)
