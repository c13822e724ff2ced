"""The one record of a stored response, from the decision to store it to the HIT.

`ResponseHead` is what the edge decides to store (edge/decisions.py `Store`), what a fill
file carries while the body arrives (bodies.py), what the index row holds (index.py), and
what an edge worker builds its prebuilt HIT from (edge/entry.py). `StoredObject` is that
head with where its body is and what the index knows of it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    request_time: float  # RFC 9111 §4.2.3: when the request that got it was sent
    response_time: float  # and when its head arrived
    length: int | None = None  # the Content-Length announced (None: unknown, chunked)
    vary_names: tuple[str, ...] = ()
    vary_values: tuple[str | None, ...] = ()
    tags: tuple[str, ...] = ()  # Surrogate-Key and Cache-Tag, for purging by tag

    def to_json(self) -> str:
        return json.dumps(
            {
                "status": self.status,
                "reason": self.reason,
                "headers": self.headers,
                "request_time": self.request_time,
                "response_time": self.response_time,
                "length": self.length,
                "vary_names": self.vary_names,
                "vary_values": self.vary_values,
                "tags": self.tags,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, data: str | bytes) -> ResponseHead:
        """From `to_json`'s JSON, or from rows an older version wrote (no length, no tags)."""
        meta: dict[str, Any] = json.loads(data)
        return cls(
            status=meta["status"],
            reason=meta["reason"],
            # Field names recur in every object: one interned copy of each.
            headers=tuple((sys.intern(n), v) for n, v in meta["headers"]),
            request_time=meta["request_time"],
            response_time=meta["response_time"],
            length=meta.get("length"),
            vary_names=tuple(meta.get("vary_names", ())),
            vary_values=tuple(meta.get("vary_values", ())),
            tags=tuple(meta.get("tags", ())),
        )

    def updated(
        self, fresh: tuple[tuple[str, str], ...], request_time: float, response_time: float
    ) -> ResponseHead:
        """RFC 9111 §3.2 and §4.3.4: this head with a 304's header fields in place of the
        stored ones they name, except those that describe the stored body and its
        framing, which the 304 does not carry."""
        replaced = {n.lower() for n, _ in fresh if n.lower() not in _KEEP_ON_UPDATE}
        kept = tuple((n, v) for n, v in self.headers if n.lower() not in replaced)
        return replace(
            self,
            headers=kept + tuple((n, v) for n, v in fresh if n.lower() in replaced),
            request_time=request_time,
            response_time=response_time,
        )


_KEEP_ON_UPDATE = frozenset(
    {"content-length", "content-encoding", "content-range", "transfer-encoding"}
)


@dataclass(slots=True)
class StoredObject:
    """A stored response as the index describes it: its head, its body's place, and the
    purge state (`stale`: a soft purge or an unsafe method made it stale)."""

    id: str
    key_hash: str
    zone_id: int
    path: str
    query: str
    head: ResponseHead
    body_offset: int
    size: int
    stored_seq: int
    stale: bool = False
