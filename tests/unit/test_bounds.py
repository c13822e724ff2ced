"""edge/bounds.py: the per-object cap, the budget a fill holds, and abandoning a fill
nobody reads."""

from __future__ import annotations

from pullzone.edge.bounds import (
    ORPHAN_BYTES,
    ORPHAN_SECONDS,
    RESERVE_STEP,
    Limits,
    Progress,
    Verdict,
    note_readers,
    reservation,
    storable_length,
    verdict,
)

MIB = 1024 * 1024
LIMITS = Limits(max_object=64 * MIB, max_cache=1024 * MIB)


def test_the_cap_is_the_object_limit_or_the_whole_cache() -> None:
    assert LIMITS.object_cap == 64 * MIB
    assert Limits(max_object=64 * MIB, max_cache=8 * MIB).object_cap == 8 * MIB


def test_a_content_length_over_the_cap_is_not_stored() -> None:
    assert storable_length(None, LIMITS) and storable_length(64 * MIB, LIMITS)
    assert not storable_length(64 * MIB + 1, LIMITS)


def test_an_unknown_length_crossing_the_cap_is_too_big() -> None:
    progress = Progress(None, written=64 * MIB - 10)
    assert verdict(progress, 10, LIMITS, now=0.0) is Verdict.KEEP
    assert verdict(progress, 11, LIMITS, now=0.0) is Verdict.TOO_BIG


def test_budget_is_held_in_steps_up_to_the_cap_and_whole_for_a_known_length() -> None:
    unknown = Progress(None)
    assert reservation(unknown, 1000, LIMITS) == RESERVE_STEP
    unknown.reserved, unknown.written = RESERVE_STEP, RESERVE_STEP - 1000
    assert reservation(unknown, 1000, LIMITS) == RESERVE_STEP  # still within
    assert reservation(unknown, 1001, LIMITS) == 2 * RESERVE_STEP
    unknown.reserved = unknown.written = 63 * MIB
    assert reservation(unknown, 1, LIMITS) == 64 * MIB  # never past the cap
    small_cache = Limits(max_object=MIB, max_cache=8 * MIB)
    assert reservation(Progress(None), 1, small_cache) == MIB // 2  # a sixteenth
    assert reservation(Progress(5 * MIB), 1, LIMITS) == 5 * MIB


def test_a_fill_with_readers_is_kept_however_long_it_takes() -> None:
    progress = Progress(None, written=30 * MIB)
    note_readers(progress, readers=True, now=0.0)
    assert verdict(progress, MIB, LIMITS, now=10_000.0) is Verdict.KEEP


def test_a_fill_nobody_reads_gets_a_bounded_rest() -> None:
    progress = Progress(None, written=MIB)
    note_readers(progress, readers=False, now=100.0)
    progress.written += ORPHAN_BYTES - 1
    assert verdict(progress, 1, LIMITS, now=101.0) is Verdict.KEEP
    assert verdict(progress, 2, LIMITS, now=101.0) is Verdict.ABANDONED  # bytes
    assert verdict(progress, 1, LIMITS, now=100.0 + ORPHAN_SECONDS + 1) is Verdict.ABANDONED
    note_readers(progress, readers=True, now=102.0)  # a new client: kept again
    assert verdict(progress, 2, LIMITS, now=200.0) is Verdict.KEEP


def test_a_known_length_nobody_reads_is_finished_only_when_little_is_left() -> None:
    near = Progress(10 * MIB, written=3 * MIB)
    note_readers(near, readers=False, now=0.0)
    assert verdict(near, MIB, LIMITS, now=1.0) is Verdict.KEEP
    far = Progress(20 * MIB, written=3 * MIB)
    note_readers(far, readers=False, now=0.0)
    assert verdict(far, MIB, LIMITS, now=1.0) is Verdict.ABANDONED
