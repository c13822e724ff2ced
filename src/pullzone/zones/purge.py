"""What a purge request asks for (README, Purge), parsed and validated without I/O.

`plan_purge` turns the body of `POST …/purge` into the plan a purge event carries, or raises
Refused with the reason and message the API answers. Nothing here touches the cache:
the applier matches the plan against the index.
"""

from __future__ import annotations

from typing import Any

from pullzone.limits import MAX_PURGE_FILES, MAX_PURGE_TAGS, MAX_TAG
from pullzone.refusal import Reason, Refused
from pullzone.zones.files import FileHosts, parse_file
from pullzone.zones.model import Zone
from pullzone.zones.plan import PurgePlan

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
    hosts = FileHosts.of(zone, edge_domain)
    unique = dict.fromkeys(parse_file(text, zone, hosts) for text in files)
    return PurgePlan(False, delete, tuple(unique), tuple(sorted(set(tags))))
