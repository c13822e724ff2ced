"""The node's traffic history without sockets (control/stats_history.py, stats_recorder.py,
stats_query.py, stats_report.py): buckets and their roll-up into hours, pruning, the span
and zones asked for, what the recorder writes and keeps pending, and reports added up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pullzone.config import Settings
from pullzone.control.stats_history import (
    HOUR,
    MINUTE,
    ORIGIN,
    HistoryStore,
    Window,
    cumulative,
    grown,
)
from pullzone.control.stats_query import BadSpan, Span, StatsQuery, parse_time, span_of
from pullzone.control.stats_recorder import SNAPSHOT_LAG, WHAT, Recorder
from pullzone.control.stats_report import NodeReport, total
from pullzone.edge.stats import WorkerStats, read_snapshots

T0 = 1_800_000_000  # a whole hour (1_800_000_000 % 3600 == 0)
assert T0 % HOUR == 0


def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "stats.db")


# -- buckets and their roll-up --


def test_what_is_recorded_adds_up_in_its_minute_and_its_hour(tmp_path: Path) -> None:
    history = store(tmp_path)
    history.record(T0 + 5, {(1, "MISS"): (1, 100), (1, ORIGIN): (1, 0)})
    history.record(T0 + 50, {(1, "HIT"): (2, 40)})  # the same minute
    history.record(T0 + 61, {(1, "HIT"): (3, 60), (2, "HIT"): (1, 7)})  # the next one
    history.record(T0 + HOUR + 1, {(1, "HIT"): (4, 80)})  # the next hour

    minutes = history.window(T0, T0 + 2 * HOUR, MINUTE, [1, 2])
    assert minutes.series == {
        (T0, "MISS"): (1, 100),
        (T0, ORIGIN): (1, 0),
        (T0, "HIT"): (2, 40),
        (T0 + 60, "HIT"): (4, 67),  # zones 1 and 2 added up
        (T0 + HOUR, "HIT"): (4, 80),
    }
    hours = history.window(T0, T0 + 2 * HOUR, HOUR, [1, 2])
    assert hours.series == {
        (T0, "MISS"): (1, 100),
        (T0, ORIGIN): (1, 0),
        (T0, "HIT"): (6, 107),
        (T0 + HOUR, "HIT"): (4, 80),
    }
    # Both resolutions agree on each zone's figures over the span.
    assert (
        minutes.zones
        == hours.zones
        == {
            (1, "MISS"): (1, 100),
            (1, ORIGIN): (1, 0),
            (1, "HIT"): (9, 180),
            (2, "HIT"): (1, 7),
        }
    )


def test_a_window_has_the_zones_and_the_buckets_asked_for_only(tmp_path: Path) -> None:
    history = store(tmp_path)
    for minute in range(5):
        history.record(T0 + minute * 60, {(1, "HIT"): (1, 10), (2, "MISS"): (10, 1)})
    window = history.window(T0 + 60, T0 + 180, MINUTE, [2])  # minutes 1 and 2 of zone 2
    assert window.series == {(T0 + 60, "MISS"): (10, 1), (T0 + 120, "MISS"): (10, 1)}
    assert window.zones == {(2, "MISS"): (20, 2)}
    assert history.window(T0, T0 + HOUR, MINUTE, []) == Window()
    assert store(tmp_path / "none").window(T0, T0 + HOUR, MINUTE, [1]) == Window()


def test_minutes_are_kept_a_day_and_hours_a_week(tmp_path: Path) -> None:
    history = store(tmp_path)
    day, week = 24 * HOUR, 7 * 24 * HOUR
    history.record(T0 - week - HOUR, {(1, "HIT"): (1, 1)})  # past both
    history.record(T0 - day - 60, {(1, "HIT"): (2, 2)})  # past the minutes' day
    history.record(T0 - day + 60, {(1, "HIT"): (4, 4)})  # within both
    assert history.prune(T0) == 3  # two minutes, one hour
    assert history.window(T0 - 2 * week, T0, MINUTE, [1]).zones == {(1, "HIT"): (4, 4)}
    assert history.window(T0 - 2 * week, T0, HOUR, [1]).zones == {(1, "HIT"): (6, 6)}
    assert history.prune(T0) == 0


# -- from counters to what grew --


def worker(stats_dir: Path, counts: list[tuple[int, str, int]], origin: int = 0) -> WorkerStats:
    stats = WorkerStats(stats_dir)
    for zone_id, status, sent in counts:
        stats.count(zone_id, status, sent)
    for _ in range(origin):
        stats.origin_answer(counts[0][0], failed=False, seconds=0.01)
    return stats


def test_the_counters_of_every_worker_add_up_and_only_growth_is_counted(tmp_path: Path) -> None:
    a = worker(tmp_path / "a", [(1, "MISS", 100), (1, "HIT", 10)], origin=1)
    b = worker(tmp_path / "b", [(1, "HIT", 20)])
    a.write(0)
    b.write(0)
    counters = cumulative([*read_snapshots(tmp_path / "a"), *read_snapshots(tmp_path / "b")])
    assert counters == {(1, "MISS"): (1, 100), (1, "HIT"): (2, 30), (1, ORIGIN): (1, 0)}
    later = {**counters, (1, "HIT"): (5, 90), (3, "BYPASS"): (1, 5)}
    assert grown(later, counters) == {(1, "HIT"): (3, 60), (3, "BYPASS"): (1, 5)}
    assert grown(counters, counters) == {}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def recorder_at(tmp_path: Path, clock: Clock) -> tuple[Recorder, Settings]:
    settings = Settings(data_dir=tmp_path / "data")
    return Recorder(settings, every=60, clock=clock), settings


def test_the_recorder_writes_what_grew_and_a_new_one_reads_it_back(tmp_path: Path) -> None:
    clock = Clock(T0 + 60 + SNAPSHOT_LAG / 2)  # minute 0 ended, less than the lag ago
    recorder, settings = recorder_at(tmp_path, clock)
    stats = worker(settings.stats_dir, [(1, "MISS", 100), (1, "HIT", 10)], origin=1)
    stats.write(0)
    span = Span(T0, T0 + HOUR, MINUTE)
    # Not written yet: pending, in the bucket of now.
    assert recorder.window(span, [1]).series == {
        (T0, "MISS"): (1, 100),
        (T0, "HIT"): (1, 10),
        (T0, ORIGIN): (1, 0),
    }
    recorder.flush()  # minute 0
    stats.count(1, "HIT", 30)
    stats.write(0)
    clock.now += 60
    recorder.close()  # minute 1: what was pending at the stop
    again, _ = recorder_at(tmp_path, clock)
    assert again.store.window(T0, T0 + HOUR, MINUTE, [1]).series == {
        (T0, "MISS"): (1, 100),
        (T0, "HIT"): (1, 10),
        (T0, ORIGIN): (1, 0),
        (T0 + 60, "HIT"): (1, 30),
    }


def test_a_write_that_fails_is_counted_and_what_it_held_is_written_later(tmp_path: Path) -> None:
    clock = Clock(T0 + 30)
    recorder, settings = recorder_at(tmp_path, clock)
    worker(settings.stats_dir, [(1, "HIT", 10)]).write(0)
    settings.stats_db.mkdir(parents=True)  # cannot be opened as a database
    recorder.flush()
    recorder.flush()
    assert recorder.writes.counts == {WHAT: 2}
    assert recorder.written == {}  # still pending
    settings.stats_db.rmdir()
    recorder.store.close()
    recorder.flush()
    assert recorder.store.window(T0, T0 + 60, MINUTE, [1]).zones == {(1, "HIT"): (1, 10)}
    assert recorder.writes.counts == {WHAT: 2}  # not more: it worked


def test_a_full_disk_rolls_back_the_whole_write(tmp_path: Path) -> None:
    history = store(tmp_path)
    history.record(T0, {(1, "HIT"): (1, 1)})
    conn = history._writer()
    conn.execute("PRAGMA max_page_count = 1")  # "database or disk is full" from now on
    with pytest.raises(sqlite3.Error):
        history.record(T0, {(z, "HIT"): (1, 1) for z in range(2, 5000)})
    assert history.window(T0, T0 + 60, MINUTE, range(5000)).zones == {(1, "HIT"): (1, 1)}


# -- the span asked for --


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1800000000", 1_800_000_000.0),
        (" 1800000000.5 ", 1_800_000_000.5),
        ("2027-01-15T08:00:00Z", 1_800_000_000.0),
        ("2027-01-15T09:00:00+01:00", 1_800_000_000.0),
        ("2027-01-15T08:00:00", 1_800_000_000.0),  # no offset: UTC
        ("2027-01-15 08:00", 1_800_000_000.0),
    ],
)
def test_times_are_unix_seconds_or_iso_8601(text: str, seconds: float) -> None:
    assert parse_time(text, "from") == seconds


@pytest.mark.parametrize("text", ["", "yesterday", "-5", "1e9", "nan", "0001-01-01T00:00:00Z"])
def test_other_times_are_refused_naming_the_parameter(text: str) -> None:
    with pytest.raises(BadSpan, match=r"^to must"):
        parse_time(text, "to")


def test_the_resolution_follows_the_span() -> None:
    assert span_of(None, None, T0 + 0.5) == Span(T0 - HOUR, T0 + 60, MINUTE)  # the last hour
    now = float(T0)
    day = 24 * HOUR
    assert span_of(str(T0 - day), None, now).step == MINUTE  # a day, within the last
    assert span_of(str(T0 - day - 30), str(T0 - 30), now).step == MINUTE  # a clock behind
    assert span_of(str(T0 - day - 600), None, now).step == HOUR  # longer
    # A short span that starts more than a day ago: only hours are kept for it.
    assert span_of(str(T0 - 2 * day), str(T0 - 2 * day + 60), now).step == HOUR
    # Whole buckets: `from` rounded down, `to` up.
    assert span_of(str(T0 - 7 * day + 10), str(T0 - 10), now) == Span(T0 - 7 * day, T0, HOUR)


@pytest.mark.parametrize(
    ("frm", "to", "message"),
    [
        (str(T0), str(T0), "from must be before to"),
        (str(T0 + 60), str(T0), "from must be before to"),
        (str(T0 - 8 * 24 * HOUR), str(T0), "at most 7 days apart"),
        (None, "soon", "to must be unix seconds"),
    ],
)
def test_spans_we_do_not_answer_are_refused(frm: str | None, to: str, message: str) -> None:
    with pytest.raises(BadSpan, match=message):
        span_of(frm, to, T0)


# -- reports --


def test_reports_go_over_the_bus_whole_and_add_up() -> None:
    a = NodeReport(
        T0,
        {(1, "HIT"): (2, 20)},
        {(T0, "HIT"): 2},
        {1: (1, 10)},
        Window({(T0, "HIT"): (2, 20)}, {(1, "HIT"): (2, 20)}),
    )
    b = NodeReport(
        T0 - 5, {(1, "HIT"): (1, 5), (1, ORIGIN): (1, 0)}, {(T0, "HIT"): 1}, {1: (1, 10)}
    )
    assert NodeReport.from_bytes(a.to_bytes()) == a
    both = total([a, b], since=T0 + 100)
    assert both.since == T0 - 5
    assert both.live == {(1, "HIT"): (3, 25), (1, ORIGIN): (1, 0)}
    assert both.minutes == {(T0, "HIT"): 3} and both.cache == {1: (2, 20)}
    assert both.history == a.history
    assert total([], since=T0).since == T0
    with pytest.raises(ValueError):
        NodeReport.from_bytes(b"")


def test_a_query_goes_over_the_bus_whole_and_a_wrong_one_is_refused() -> None:
    query = StatsQuery(Span(T0, T0 + HOUR, MINUTE), (1, 2))
    assert StatsQuery.from_json(query.to_json()) == query
    with pytest.raises(ValueError):
        StatsQuery.from_json({"start": T0, "end": T0 + HOUR, "step": 7, "zones": []})
