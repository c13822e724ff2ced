"""Events: every change a node applies, in one ordered log (README, Cluster: How it works)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# What the API proposes (the stream carries these) ...
ZONE_CREATE = "zone.create"  # payload: the draft zone; its id becomes the event's sequence
KEY_CREATE = "key.create"
KEY_REVOKE = "key.revoke"
# ... and what the edge reads from a node's log (a create is stored as the ZONE_PUT it made).
ZONE_PUT = "zone.put"
ZONE_DELETE = "zone.delete"
PURGE = "purge"


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str
    zone_id: int
    payload: dict[str, Any]
    at: float

    def payload_json(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"))
