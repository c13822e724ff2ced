"""Range requests and multipart/byteranges (RFC 9110 §14)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pullzone.spec.ranges import (
    content_range,
    multipart_length,
    multipart_parts,
    parse_range,
    unsatisfiable_content_range,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-499", [(0, 499)]),
        ("bytes=500-999", [(500, 999)]),
        ("bytes=-500", [(9500, 9999)]),
        ("bytes=9500-", [(9500, 9999)]),
        ("bytes=0-0", [(0, 0)]),
        ("bytes=-1", [(9999, 9999)]),
        ("bytes=0-99999", [(0, 9999)]),  # last-pos beyond the end is clipped
        ("bytes=-20000", [(0, 9999)]),  # suffix longer than the body: all of it
        ("BYTES=0-1", [(0, 1)]),  # the unit is case-insensitive
        ("bytes=0-0, -1", [(0, 0), (9999, 9999)]),
        ("bytes= 0-1 ,, 5-6 ,", [(0, 1), (5, 6)]),  # empty list members are fine
    ],
)
def test_satisfiable_ranges_of_a_10000_byte_body(
    header: str, expected: list[tuple[int, int]]
) -> None:
    assert parse_range(header, 10000) == expected


def test_absent_header_is_none() -> None:
    assert parse_range(None, 100) is None


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "items=0-5",
        "bytes=5",
        "bytes=a-b",
        "bytes=5-1",  # last-pos before first-pos
        "bytes=-",
        "bytes=--5",
        "bytes=+1-2",
        "bytes=0-1,junk",
        "bytes=1 - 2",
        "bytes=\u0660-\u0661",  # non-ASCII digits
    ],
)
def test_malformed_or_foreign_unit_headers_are_ignored(header: str) -> None:
    assert parse_range(header, 100) is None


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=500-,-0"])
def test_valid_but_unsatisfiable_ranges(header: str) -> None:
    assert parse_range(header, 100) == "unsatisfiable"


def test_unsatisfiable_members_are_dropped_when_another_is_satisfiable() -> None:
    assert parse_range("bytes=500-600,0-9", 100) == [(0, 9)]


def test_empty_body_int_range_is_unsatisfiable_and_suffix_gets_the_whole_body() -> None:
    assert parse_range("bytes=0-0", 0) == "unsatisfiable"
    assert parse_range("bytes=-5", 0) is None


def test_huge_positions_do_not_break_parsing() -> None:
    assert parse_range("bytes=0-" + "9" * 5000, 100) == [(0, 99)]
    assert parse_range("bytes=" + "9" * 5000 + "-", 100) == "unsatisfiable"
    assert parse_range("bytes=-" + "9" * 5000, 100) == [(0, 99)]


def test_overlapping_and_adjacent_ranges_are_coalesced_in_ascending_order() -> None:
    assert parse_range("bytes=50-99,0-10,5-20", 1000) == [(0, 20), (50, 99)]
    assert parse_range("bytes=0-9,10-19", 1000) == [(0, 19)]
    assert parse_range("bytes=0-,-100", 1000) == [(0, 999)]


def test_disjoint_ranges_keep_the_request_order() -> None:
    assert parse_range("bytes=500-599,0-99", 1000) == [(500, 599), (0, 99)]


def test_more_than_100_ranges_are_ignored() -> None:
    many = ",".join(f"{i * 3}-{i * 3}" for i in range(101))
    assert parse_range(f"bytes={many}", 10000) is None
    hundred = ",".join(f"{i * 3}-{i * 3}" for i in range(100))
    result = parse_range(f"bytes={hundred}", 10000)
    assert isinstance(result, list)
    assert len(result) == 100


def test_overlapping_ranges_asking_for_more_than_twice_the_body_are_ignored() -> None:
    assert parse_range("bytes=0-,0-,0-", 1000) is None
    assert parse_range("bytes=0-,0-", 1000) == [(0, 999)]


@given(st.text(max_size=60), st.integers(min_value=0, max_value=10**6))
def test_parse_range_never_raises_on_arbitrary_text(text: str, size: int) -> None:
    parse_range(text, size)
    parse_range("bytes=" + text, size)


_spec = st.one_of(
    st.tuples(st.integers(0, 300), st.one_of(st.none(), st.integers(0, 300))).filter(
        lambda t: t[1] is None or t[1] >= t[0]
    ),
    st.tuples(st.none(), st.integers(0, 300)),
)


def _render(spec: tuple[int | None, int | None]) -> str:
    first, last = spec
    return f"{'' if first is None else first}-{'' if last is None else last}"


def _wanted(spec: tuple[int | None, int | None], size: int) -> set[int]:
    first, last = spec
    if first is None:
        assert last is not None
        return set(range(max(0, size - last), size))
    return set(range(first, size if last is None else min(last + 1, size)))


@given(st.lists(_spec, min_size=1, max_size=8), st.integers(min_value=0, max_value=250))
def test_parsed_ranges_cover_exactly_the_requested_satisfiable_bytes(
    specs: list[tuple[int | None, int | None]], size: int
) -> None:
    result = parse_range("bytes=" + ",".join(_render(s) for s in specs), size)
    wanted = set().union(*(_wanted(s, size) for s in specs))
    requested = sum(len(_wanted(s, size)) for s in specs)
    if result is None:
        # ignored only for an empty body or when the request asks for too much
        assert size == 0 or requested > 2 * size
        return
    if result == "unsatisfiable":
        assert not wanted
        return
    covered: set[int] = set()
    for first, last in result:
        assert 0 <= first <= last < size
        span = set(range(first, last + 1))
        assert not covered & span  # parts never overlap
        covered |= span
    assert covered == wanted


@given(st.lists(_spec, min_size=2, max_size=8), st.integers(min_value=1, max_value=250))
def test_ranges_are_ascending_and_separated_whenever_something_was_coalesced(
    specs: list[tuple[int | None, int | None]], size: int
) -> None:
    result = parse_range("bytes=" + ",".join(_render(s) for s in specs), size)
    assume(isinstance(result, list))
    assert isinstance(result, list)
    satisfiable = [s for s in specs if _wanted(s, size)]
    if len(result) < len(satisfiable):
        for (_, last), (first, _) in itertools.pairwise(result):
            assert first > last + 1


def test_content_range_values() -> None:
    assert content_range(0, 499, 1234) == "bytes 0-499/1234"
    assert unsatisfiable_content_range(1234) == "bytes */1234"


def test_multipart_parts_follow_rfc_9110_example_framing() -> None:
    heads, closing = multipart_parts([(0, 4), (10, 11)], 20, "text/plain", "THIS")
    assert heads == [
        b"--THIS\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/20\r\n\r\n",
        b"\r\n--THIS\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-11/20\r\n\r\n",
    ]
    assert closing == b"\r\n--THIS--\r\n"


def test_multipart_parts_without_content_type_omit_the_field() -> None:
    heads, _ = multipart_parts([(0, 0)], 1, None, "b")
    assert heads == [b"--b\r\nContent-Range: bytes 0-0/1\r\n\r\n"]


@given(
    st.lists(
        st.tuples(st.integers(0, 99), st.integers(0, 99)).map(lambda t: (min(t), max(t))),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([None, "application/octet-stream", "text/html; charset=utf-8"]),
)
def test_multipart_length_equals_the_assembled_body(
    ranges: list[tuple[int, int]], content_type: str | None
) -> None:
    body = bytes(range(100))
    heads, closing = multipart_parts(ranges, 100, content_type, "0123abcd")
    assembled = (
        b"".join(
            head + body[first : last + 1] for head, (first, last) in zip(heads, ranges, strict=True)
        )
        + closing
    )
    assert multipart_length(ranges, heads, closing) == len(assembled)
    assert assembled.count(b"--0123abcd") == len(ranges) + 1
    assert assembled.endswith(b"--0123abcd--\r\n")
