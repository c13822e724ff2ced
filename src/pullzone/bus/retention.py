"""How long the event stream keeps events (`--stream-retention`, docs/cluster.md) and
the rule that makes that safe: a snapshot (bus/snapshots.py) is written at least every
snapshot interval, so the retention must leave room for at least two of them before an
event ages out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI checks the flags without importing nats-py
    from nats.js import JetStreamManager, api

log = logging.getLogger("pullzone.bus")

DUPLICATE_WINDOW = 120.0  # publishes with the same msg_id within this window are stored once
SAFETY = 2  # snapshot intervals the retention must span at least


def check_retention(retention: float, snapshot_interval: float) -> str | None:
    """Why `retention` (0: forever) is refused with this snapshot interval; None if fine."""
    if retention < 0 or snapshot_interval <= 0:
        return "the retention and the snapshot interval are durations above 0"
    if retention and retention < SAFETY * snapshot_interval:
        return (
            f"a stream retention of {retention:g} s is shorter than {SAFETY} snapshot "
            f"intervals (of {snapshot_interval:g} s): events could age out before "
            "a snapshot covers them; raise --stream-retention or lower --snapshot-interval"
        )
    return None


def retention_limits(retention: float) -> dict[str, Any]:
    """The stream's max_age and duplicate_window (JetStream wants the window within the
    age) for `retention` seconds, 0: forever."""
    if not retention:
        return {"max_age": 0.0, "duplicate_window": DUPLICATE_WINDOW}
    return {"max_age": retention, "duplicate_window": min(DUPLICATE_WINDOW, retention)}


async def update_retention(jsm: JetStreamManager, info: api.StreamInfo, retention: float) -> None:
    """Give an existing stream this node's retention (the other settings stay as they
    are: another node made them)."""
    config = info.config
    wanted = retention_limits(retention)
    have = {"max_age": config.max_age or 0.0, "duplicate_window": config.duplicate_window}
    if all(abs(float(have[k]) - wanted[k]) < 1e-3 for k in wanted):
        return
    log.warning(
        "bus: stream %s: retention %g s → %g s", config.name, have["max_age"], wanted["max_age"]
    )
    config.max_age, config.duplicate_window = wanted["max_age"], wanted["duplicate_window"]
    await jsm.update_stream(config)
