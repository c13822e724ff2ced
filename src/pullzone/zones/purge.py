"""What a purge request asks for (README, Purge), parsed and validated without I/O.

`plan_purge` turns the body of `POST …/purge` into the plan a purge event carries, or raises
Refused with the reason and message the API answers. Nothing here touches the cache:
the applier matches the plan against the index.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from pullzone.limits import MAX_PURGE_FILES, MAX_PURGE_PATH, MAX_PURGE_TAGS, MAX_TAG
from pullzone.refusal import Reason, Refused
from pullzone.spec.uri import normalise
from pullzone.zones.model import Zone
from pullzone.zones.plan import PurgeFile, PurgePlan

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse_delete(value: str | None) -> bool:
    """`delete` accepts true/false/1/0/yes/no in any case (README, Purge)."""
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise Refused(Reason.INVALID, "delete must be one of true, false, 1, 0, yes, no")


def check_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The decoded body (JSON or form, `control/body.py`), when it holds only what a purge
    takes; `{}` (no body) is a whole-zone purge."""
    unknown = sorted(set(body) - {"files", "tags"})
    if unknown:
        raise Refused(Reason.INVALID, f"unknown field {unknown[0]!r}: a purge takes files and tags")
    return body


def _file_item(text: str, zone: Zone, hostnames: set[str]) -> PurgeFile:
    if "\x00" in text:
        raise Refused(Reason.INVALID, "a file must not contain NUL bytes")
    if len(text) > MAX_PURGE_PATH:
        raise Refused(Reason.INVALID, f"a file is longer than {MAX_PURGE_PATH} characters")
    if not text.startswith("/"):
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused(
                Reason.INVALID,
                f"{text[:100]!r} is neither a path starting with / nor a URL of this zone",
            )
        if parts.hostname.lower() not in hostnames:
            raise Refused(Reason.INVALID, f"{parts.hostname!r} is not a hostname of zone {zone.id}")
        text = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Spelled as the cache key spells it (RFC 3986 §6.2.2): `/%62` purges `/b`.
    path, sep, query = normalise(text).partition("?")
    segments = unquote(path).split("/")
    if ".." in segments or "." in segments:
        raise Refused(Reason.INVALID, f"{text[:100]!r} has a . or .. segment: give the path itself")
    if not path.startswith("/"):
        raise Refused(Reason.INVALID, f"{text[:100]!r} must start with /")
    prefix = not sep and path.endswith("*")
    if prefix:
        path = path[:-1]
    if "*" in path:
        raise Refused(Reason.INVALID, "a * may only end a path (a prefix purge such as /images/*)")
    if not zone.cache.querystring:
        sep, query = "", ""  # the zone ignores query strings: one object per path
    return PurgeFile(path, query if sep else None, prefix)


def plan_purge(body: dict[str, Any], zone: Zone, edge_domain: str, delete: bool) -> PurgePlan:
    """The purge a parsed body asks for."""
    if "files" not in body and "tags" not in body:
        return PurgePlan(whole_zone=True, delete=delete)
    files = body.get("files", [])
    tags = body.get("tags", [])
    for name, value in (("files", files), ("tags", tags)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Refused(Reason.INVALID, f"{name} must be a list of strings")
    # An empty list is refused wherever it appears (also beside a non-empty one): it is
    # never read as "everything", and the OpenAPI schema (minItems 1) says so exactly.
    for name, value in (("files", files), ("tags", tags)):
        if name in body and not value:
            raise Refused(
                Reason.INVALID,
                f"{name} is empty: list what to purge, or send no body to purge the whole zone",
            )
    if len(files) > MAX_PURGE_FILES or len(tags) > MAX_PURGE_TAGS:
        raise Refused(
            Reason.TOO_LARGE,
            f"at most {MAX_PURGE_FILES} files and {MAX_PURGE_TAGS} tags per request",
        )
    for tag in tags:
        if not tag or len(tag) > MAX_TAG or any(c.isspace() or c == "\x00" for c in tag):
            raise Refused(
                Reason.INVALID, f"invalid tag {tag[:100]!r}: no spaces, 1 to {MAX_TAG} chars"
            )
    hostnames = set(zone.hostnames(edge_domain))
    unique = dict.fromkeys(_file_item(text, zone, hostnames) for text in files)
    return PurgePlan(False, delete, tuple(unique), tuple(sorted(set(tags))))
