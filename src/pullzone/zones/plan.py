"""The purge plan: what a purge does, whichever way it was asked (zones.purge plans it
from an API request, cache.applier carries it out, a PURGE event carries it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pullzone.zones.glob import GLOB_VERSION

PURGE_KIND = "purge"  # the kind of event that carries a plan (bus.events.PURGE)


@dataclass(frozen=True, slots=True)
class PurgeFile:
    path: str  # normalised (RFC 3986 §6.2.2), without the trailing * of a prefix
    query: str | None  # None: every variant of the path
    prefix: bool  # every path that starts with `path`
    # A `*` inside the path (zones.glob): the whole normalised pattern, `path` its literal
    # prefix and `prefix` true. Carried in its own versioned field, so a node whose code
    # predates globs reads the item as the prefix purge of `path`: more than was asked,
    # never less, so nothing purged is served fresh there either.
    glob: str | None = None

    @classmethod
    def from_payload(cls, item: Mapping[str, Any]) -> PurgeFile:
        path = item["path"]  # first: a payload that is no mapping raises TypeError here
        glob = item.get("glob")
        pattern = None
        if isinstance(glob, Mapping) and glob.get("v") == GLOB_VERSION:
            pattern = glob["pattern"]
            if not isinstance(pattern, str) or not pattern.startswith(path):
                raise ValueError("a glob's pattern must be text starting with its path")
        # A glob of a version this code does not know stays the prefix purge it also is.
        return cls(path, item.get("query"), bool(item.get("prefix", False)), pattern)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"path": self.path, "query": self.query, "prefix": self.prefix}
        if self.glob is not None:  # items without one are stored as every release wrote them
            payload["glob"] = {"v": GLOB_VERSION, "pattern": self.glob}
        return payload

    def shown(self) -> str:
        """The file as the purge history shows it: normalised, a prefix ending in `*`, a
        variant with its `?query`."""
        text = self.glob if self.glob is not None else self.path + ("*" if self.prefix else "")
        return text + (f"?{self.query}" if self.query is not None else "")


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
