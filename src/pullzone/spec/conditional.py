"""Conditional requests against a stored representation (RFC 9110 §13)."""

from __future__ import annotations

from pullzone.spec.dates import parse_http_date
from pullzone.spec.headers import HeaderMap

_OWS = " \t"


def etag_list(value: str | None) -> list[str]:
    """The entity-tags of an If-Match / If-None-Match value (RFC 9110 §8.8.3), as written
    (`"x"`, `W/"x"`); ["*"] for "*". Commas inside a quoted tag stay in it. Tolerant:
    an unquoted member is kept as a bare token, junk after a closing quote is dropped."""
    if not value:
        return []
    value = value.strip(_OWS)
    if value == "*":
        return ["*"]
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in " \t,":
            i += 1
            continue
        if c == '"' or value.startswith('W/"', i):
            open_quote = i if c == '"' else i + 2
            close = value.find('"', open_quote + 1)
            if close < 0:  # unterminated: keep what there is
                out.append(value[i:])
                break
            out.append(value[i : close + 1])
            comma = value.find(",", close + 1)
            i = n if comma < 0 else comma + 1
            continue
        comma = value.find(",", i)
        end = n if comma < 0 else comma
        token = value[i:end].strip(_OWS)
        if token:
            out.append(token)
        i = end + 1
    return out


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def weak_match(a: str, b: str) -> bool:
    """RFC 9110 §8.8.3.2 weak comparison: opaque-tags equal, either may be weak."""
    return _opaque(a) == _opaque(b)


def strong_match(a: str, b: str) -> bool:
    """RFC 9110 §8.8.3.2 strong comparison: both strong and identical."""
    return a == b and not a.startswith("W/")


def evaluate_preconditions(
    req: HeaderMap, *, etag: str | None, last_modified: float | None
) -> int | None:
    """RFC 9110 §13.2.2 for GET/HEAD on a stored (hence existing) representation: 412,
    304, or None to carry on with the request."""
    # Step 1: If-Match, strong comparison (§13.1.1); "*" is true as a representation
    # exists.
    if_match = req.get("if-match")
    if if_match is not None:
        tags = etag_list(if_match)
        if tags != ["*"] and (etag is None or not any(strong_match(t, etag) for t in tags)):
            return 412
    else:
        # Step 2: If-Unmodified-Since only without If-Match (§13.1.4); ignored when not
        # a valid HTTP-date or without a modification date.
        if_unmodified = req.get("if-unmodified-since")
        if if_unmodified is not None and last_modified is not None:
            date = parse_http_date(if_unmodified)
            if date is not None and last_modified > date:
                return 412
    # Step 3: If-None-Match, weak comparison (§13.1.2); for GET/HEAD a match → 304.
    if_none_match = req.get("if-none-match")
    if if_none_match is not None:
        tags = etag_list(if_none_match)
        if tags == ["*"] or (etag is not None and any(weak_match(t, etag) for t in tags)):
            return 304
        return None  # its presence rules out If-Modified-Since (step 4)
    # Step 4: If-Modified-Since (§13.1.3): ignored when invalid (a list of dates is
    # invalid too) or without a modification date.
    if_modified = req.get("if-modified-since")
    if if_modified is not None and last_modified is not None:
        date = parse_http_date(if_modified)
        if date is not None and last_modified <= date:
            return 304
    return None


def if_range_ok(value: str | None, *, etag: str | None, last_modified: float | None) -> bool:
    """RFC 9110 §13.1.5: whether the Range header may be honoured. An entity-tag must
    match strongly (a weak tag never does); an HTTP-date must equal Last-Modified exactly.
    An invalid value is false (serve the whole representation). No If-Range → True.

    Not checked: whether Last-Modified is itself a strong validator (§8.8.2.2).
    """
    if value is None:
        return True
    value = value.strip(_OWS)
    if value.startswith('"') or value.startswith("W/"):
        return etag is not None and strong_match(value, etag)
    date = parse_http_date(value)
    return date is not None and last_modified is not None and date == last_modified
