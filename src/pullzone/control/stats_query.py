"""What `GET /v2/stats?from=…&to=…` asks for (docs/operations.md, Stats): the span of
history, at which resolution, of which zones.

`from` and `to` are unix seconds (digits, optionally with a fraction) or ISO 8601 date
times (`2026-12-03T08:00:00Z`; without an offset, UTC). Left out: `to` is now and `from`
an hour before `to`. The span is at most 7 days (what hour buckets keep). It is answered
in minutes when it is at most 24 hours long and starts within the last 24 hours and a
minute (what minute buckets keep), else in hours; `from` is rounded down and `to` up to
whole buckets.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pullzone.control.schemas import short
from pullzone.control.stats_history import HOUR, KEPT, MINUTE

DEFAULT_SPAN = HOUR
MAX_SPAN = KEPT[HOUR]
_UNIX = re.compile(r"\d{1,12}(\.\d{1,9})?")


class BadSpan(ValueError):
    """`from` or `to` is not a time, or they make no span we answer (a 400)."""


def parse_time(text: str, name: str) -> float:
    """Unix seconds from `text`: digits (unix seconds) or an ISO 8601 date time."""
    value = text.strip()
    if _UNIX.fullmatch(value):
        return float(value)
    try:
        when = datetime.datetime.fromisoformat(value.upper())  # RFC 3339 allows t and z
    except ValueError:
        raise BadSpan(
            f"{name} must be unix seconds (1764748800) or an ISO 8601 time "
            f"(2026-12-03T08:00:00Z), not {short(text, 40)}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    seconds = when.timestamp()
    if seconds < 0:
        raise BadSpan(f"{name} must not be before 1970: {short(text, 40)}")
    return seconds


@dataclass(frozen=True, slots=True)
class Span:
    """Buckets of `step` seconds from `start` up to `end` (not included)."""

    start: int
    end: int
    step: int

    @property
    def buckets(self) -> int:
        return (self.end - self.start) // self.step


def span_of(from_text: str | None, to_text: str | None, now: float) -> Span:
    """The span `from` and `to` ask for (BadSpan when they ask for none we answer)."""
    to = now if to_text is None else parse_time(to_text, "to")
    start = to - DEFAULT_SPAN if from_text is None else parse_time(from_text, "from")
    if start >= to:
        raise BadSpan("from must be before to")
    if to - start > MAX_SPAN:
        raise BadSpan(f"from and to may be at most {MAX_SPAN // 86400} days apart")
    # A minute's grace: "the last 24 hours" asked by a client whose clock is a little behind.
    minutes = to - start <= KEPT[MINUTE] and start >= now - KEPT[MINUTE] - MINUTE
    step = MINUTE if minutes else HOUR
    return Span(int(start) // step * step, math.ceil(to / step) * step, step)


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """What a node is asked for: its history over `span`, and its figures, of `zones`."""

    span: Span
    zones: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        s = self.span
        return {"start": s.start, "end": s.end, "step": s.step, "zones": list(self.zones)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatsQuery:
        span = Span(int(data["start"]), int(data["end"]), int(data["step"]))
        if span.step not in KEPT or span.buckets < 0 or span.buckets > MAX_SPAN // MINUTE:
            raise ValueError(f"not a span: {data!r}")
        return cls(span, tuple(int(z) for z in data["zones"]))
