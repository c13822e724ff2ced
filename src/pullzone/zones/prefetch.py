"""What a prefetch request asks for (README, Purge and prefetch), parsed and validated
without I/O: the origin-form targets every edge fetches (server/prefetcher.py)."""

from __future__ import annotations

from typing import Any

from pullzone.limits import MAX_PREFETCH_FILES
from pullzone.refusal import Reason, Refused
from pullzone.zones.files import FileHosts, parse_file
from pullzone.zones.model import Zone


def plan_prefetch(body: dict[str, Any], zone: Zone, edge_domain: str) -> tuple[str, ...]:
    """The targets (path and query, normalised as cache keys are) a parsed body names, in
    order, each once. Files are written as for a purge (paths, or URLs on the zone's
    hosts), but name objects: no `*`."""
    unknown = sorted(set(body) - {"files"})
    if unknown:
        raise Refused(Reason.INVALID, f"unknown field {unknown[0]!r}: a prefetch takes files")
    files = body.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise Refused(Reason.INVALID, "files must be a list of strings: the objects to fetch")
    if not files:
        raise Refused(Reason.INVALID, "files is empty: list the objects to fetch")
    if len(files) > MAX_PREFETCH_FILES:
        raise Refused(Reason.TOO_LARGE, f"at most {MAX_PREFETCH_FILES} files per prefetch")
    hosts = FileHosts.of(zone, edge_domain)
    targets = []
    for text in files:
        item = parse_file(text, zone, hosts)
        if item.prefix or item.glob is not None:
            raise Refused(
                Reason.INVALID,
                f"{text[:100]!r} has a *: a prefetch names objects (globs are for purges)",
            )
        targets.append(item.path + (f"?{item.query}" if item.query else ""))
    return tuple(dict.fromkeys(targets))
