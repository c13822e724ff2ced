"""Events: every change a node applies, in one ordered log (DESIGN.md, "The shape we want")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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
