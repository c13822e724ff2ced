"""The purge plan: what a purge does, whichever way it was asked (zones.purge plans it
from an API request, cache.applier carries it out, a PURGE event carries it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

PURGE_KIND = "purge"  # the kind of event that carries a plan (bus.events.PURGE)


@dataclass(frozen=True, slots=True)
class PurgeFile:
    path: str  # normalised (RFC 3986 §6.2.2), without the trailing * of a prefix
    query: str | None  # None: every variant of the path
    prefix: bool  # every path that starts with `path`

    @classmethod
    def from_payload(cls, item: Mapping[str, Any]) -> PurgeFile:
        return cls(item["path"], item.get("query"), bool(item.get("prefix", False)))

    def to_payload(self) -> dict[str, Any]:
        return {"path": self.path, "query": self.query, "prefix": self.prefix}


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """What a purge does (zones.purge plans it, cache.applier carries it out): the payload
    of a PURGE event in a node's log."""

    KIND: ClassVar[str] = PURGE_KIND

    whole_zone: bool
    delete: bool  # remove the objects; otherwise mark them stale
    files: tuple[PurgeFile, ...] = ()  # a selective purge's: files and tags
    tags: tuple[str, ...] = ()

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PurgePlan:
        delete = bool(payload.get("delete"))
        if payload.get("all"):
            return cls(whole_zone=True, delete=delete)  # files and tags are never read
        files = tuple(PurgeFile.from_payload(item) for item in payload.get("files", ()))
        return cls(False, delete, files, tuple(payload.get("tags", ())))

    def to_payload(self) -> dict[str, Any]:
        if self.whole_zone:
            return {"all": True, "delete": self.delete}
        return {
            "all": False,
            "delete": self.delete,
            "files": [item.to_payload() for item in self.files],
            "tags": list(self.tags),
        }
