"""HTTP-date parsing and formatting (RFC 9110 §5.6.7)."""

from __future__ import annotations

import functools
import re
import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {m.lower(): i for i, m in enumerate(_MONTHS, 1)}
_DAY_NAMES = frozenset(d.lower() for d in _DAYS)
_LONG_DAY_NAMES = frozenset(
    {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)

# Names and "GMT" are matched case-insensitively: RFC 9110 §5.6.7 encourages recipients
# to be robust in parsing timestamps. Digits are ASCII only (re.ASCII).
_FLAGS = re.ASCII | re.IGNORECASE
# IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
_IMF = re.compile(r"([a-z]{3}), (\d\d) ([a-z]{3}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT", _FLAGS)
# obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
_RFC850 = re.compile(r"([a-z]{6,9}), (\d\d)-([a-z]{3})-(\d\d) (\d\d):(\d\d):(\d\d) GMT", _FLAGS)
# obsolete asctime: Sun Nov  6 08:49:37 1994
_ASCTIME = re.compile(r"([a-z]{3}) ([a-z]{3}) ( \d|\d\d) (\d\d):(\d\d):(\d\d) (\d{4})", _FLAGS)

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _timestamp(
    year: int, month_name: str, day: int, hour: int, minute: int, second: int
) -> float | None:
    month = _MONTH_NUMBER.get(month_name.lower())
    if month is None or day < 1 or hour > 23 or minute > 59 or second > 60:
        return None  # second 60: a leap second (RFC 9110 §5.6.7 allows 00-60)
    if day > _DAYS_IN_MONTH[month - 1] + (month == 2 and _is_leap(year)):
        return None
    days = _days_from_civil(year, month, day)
    return float(days * 86400 + hour * 3600 + minute * 60 + second)


def _rfc850_year(yy: int, now: float | None) -> int:
    # RFC 9110 §5.6.7: a two-digit year that appears to be more than 50 years in the
    # future is the most recent past year with the same last two digits.
    current = time.gmtime(time.time() if now is None else now).tm_year
    year = current - current % 100 + yy
    if year > current + 50:
        year -= 100
    elif year <= current - 50:
        year += 100
    return year


# Values this long at most go through the cache (an IMF-fixdate is 29 characters, a few
# more with whitespace around it): an origin's long junk does not fill it.
_FIXDATE_CACHED = 40


@functools.lru_cache(maxsize=4096)
def _fixdate(value: str) -> tuple[bool, float | None]:
    """(whether `value` is an IMF-fixdate, its UNIX time if valid). Cached: the form
    depends on nothing but the text, and the objects an edge worker loads share a few
    Date and Last-Modified values (the same second, the same file)."""
    m = _IMF.fullmatch(value.strip(" \t"))
    if m is None:
        return False, None
    day_name, day, month, year, hh, mm, ss = m.groups()
    if day_name.lower() not in _DAY_NAMES:
        return True, None
    return True, _timestamp(int(year), month, int(day), int(hh), int(mm), int(ss))


def parse_http_date(value: str | None, *, now: float | None = None) -> float | None:
    """UNIX time of an HTTP-date in any of the three forms of RFC 9110 §5.6.7, else None.

    `now` only matters for the two-digit years of the obsolete RFC 850 form (defaults to
    the clock). The day name is checked to be a day name, not checked against the date.
    """
    if not value:
        return None
    fixdate, ts = _fixdate(value) if len(value) <= _FIXDATE_CACHED else _fixdate.__wrapped__(value)
    if fixdate:
        return ts
    value = value.strip(" \t")
    m = _RFC850.fullmatch(value)
    if m is not None:
        day_name, day, month, yy, hh, mm, ss = m.groups()
        if day_name.lower() not in _LONG_DAY_NAMES:
            return None
        return _timestamp(_rfc850_year(int(yy), now), month, int(day), int(hh), int(mm), int(ss))
    m = _ASCTIME.fullmatch(value)
    if m is not None:
        day_name, month, day, hh, mm, ss, year = m.groups()
        if day_name.lower() not in _DAY_NAMES:
            return None
        return _timestamp(int(year), month, int(day.lstrip()), int(hh), int(mm), int(ss))
    return None


# format_http_date runs once per response: keep the last whole second's string.
_last_formatted: list[tuple[int, str]] = [(-(2**62), "")]


def format_http_date(ts: float) -> str:
    """IMF-fixdate (RFC 9110 §5.6.7) of a UNIX time, fraction truncated toward the past."""
    second = int(ts // 1)
    cached = _last_formatted[0]
    if cached[0] == second:
        return cached[1]
    t = time.gmtime(second)
    text = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )
    _last_formatted[0] = (second, text)
    return text
