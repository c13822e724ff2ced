"""HTTP-date (RFC 9110 §5.6.7)."""

from __future__ import annotations

import calendar
import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullzone.spec.dates import format_http_date, parse_http_date

SUNDAY_1994 = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT (the RFC's example)
_MAX_TS = 253402300799  # 9999-12-31 23:59:59


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
    ],
)
def test_all_three_date_forms_parse_to_the_same_instant(text: str) -> None:
    assert parse_http_date(text, now=1.7e9) == SUNDAY_1994


def test_surrounding_whitespace_is_tolerated() -> None:
    assert parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT\t") == SUNDAY_1994
    # Past the length the parse cache takes, still parsed.
    assert parse_http_date(" " * 40 + "Sun, 06 Nov 1994 08:49:37 GMT" + "\t" * 40) == SUNDAY_1994


def test_a_cached_parse_answers_as_the_first_did() -> None:
    text = "Mon, 07 Nov 1994 08:49:37 GMT"
    assert parse_http_date(text) == parse_http_date(text) == SUNDAY_1994 + 86400
    assert parse_http_date("Xyz, 07 Nov 1994 08:49:37 GMT") is None
    assert parse_http_date("Xyz, 07 Nov 1994 08:49:37 GMT") is None


def test_names_are_matched_case_insensitively() -> None:
    assert parse_http_date("sun, 06 NOV 1994 08:49:37 gmt") == SUNDAY_1994


def test_asctime_accepts_a_two_digit_day() -> None:
    assert parse_http_date("Thu Nov 10 08:49:37 1994") == SUNDAY_1994 + 4 * 86400


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "0",
        "-1",
        "tomorrow",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 6 Nov 1994 08:49:37 GMT",  # IMF-fixdate needs two-digit days
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",  # 1900 is not a leap year
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",  # combined
        "Sun, ٠٦ Nov 1994 08:49:37 GMT",  # non-ASCII digits
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
    ],
)
def test_invalid_dates_are_none(text: str | None) -> None:
    assert parse_http_date(text) is None


def test_leap_year_february_29_is_valid() -> None:
    assert parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT") == calendar.timegm(
        (2024, 2, 29, 0, 0, 0)
    )


def test_leap_second_is_accepted() -> None:
    assert parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT") == calendar.timegm(
        (2017, 1, 1, 0, 0, 0)
    )


def test_rfc850_two_digit_year_more_than_50_years_ahead_is_in_the_past() -> None:
    now_2025 = calendar.timegm((2025, 6, 1, 0, 0, 0))
    assert parse_http_date("Friday, 01-Jan-99 00:00:00 GMT", now=now_2025) == calendar.timegm(
        (1999, 1, 1, 0, 0, 0)
    )
    assert parse_http_date("Monday, 01-Jan-74 00:00:00 GMT", now=now_2025) == calendar.timegm(
        (2074, 1, 1, 0, 0, 0)
    )


def test_format_is_imf_fixdate() -> None:
    assert format_http_date(SUNDAY_1994) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_format_truncates_fractions_and_repeats_within_a_second() -> None:
    assert format_http_date(SUNDAY_1994 + 0.999) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(SUNDAY_1994 + 1.0) == "Sun, 06 Nov 1994 08:49:38 GMT"
    assert format_http_date(SUNDAY_1994 + 1.5) == "Sun, 06 Nov 1994 08:49:38 GMT"


def test_format_after_cached_second_gives_a_new_value() -> None:
    first = format_http_date(1_700_000_000.2)
    assert format_http_date(1_700_000_000.7) == first
    assert format_http_date(1_700_000_001.0) != first
    assert format_http_date(1_699_999_999.0) == "Tue, 14 Nov 2023 22:13:19 GMT"


@given(st.integers(min_value=0, max_value=_MAX_TS))
def test_format_then_parse_round_trips_whole_seconds(ts: int) -> None:
    assert parse_http_date(format_http_date(ts)) == ts


@given(st.floats(min_value=0, max_value=_MAX_TS, allow_nan=False))
def test_format_then_parse_gives_the_whole_second_at_or_before(ts: float) -> None:
    parsed = parse_http_date(format_http_date(ts))
    assert parsed is not None
    assert parsed <= ts < parsed + 1


@given(st.integers(min_value=0, max_value=_MAX_TS))
def test_format_agrees_with_the_standard_library(ts: int) -> None:
    assert format_http_date(ts) == email.utils.formatdate(ts, usegmt=True)


@given(st.integers(min_value=0, max_value=_MAX_TS))
def test_asctime_form_parses_like_imf_fixdate(ts: int) -> None:
    imf = format_http_date(ts)
    day, month, year, clock = imf[5:7], imf[8:11], imf[12:16], imf[17:25]
    asctime = f"{imf[:3]} {month} {int(day):2d} {clock} {year}"
    assert parse_http_date(asctime) == ts


@given(st.text())
def test_parse_never_raises_on_arbitrary_text(text: str) -> None:
    result = parse_http_date(text)
    assert result is None or isinstance(result, float)
