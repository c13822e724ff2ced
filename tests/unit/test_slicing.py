"""The slicing decisions (edge/slicing.py) and Content-Range parsing, without sockets."""

from __future__ import annotations

import pytest

from pullzone.cache.stored import ResponseHead
from pullzone.edge.slicing import (
    SLICE_SIZE,
    Identity,
    Slice,
    first_wanted,
    identity,
    received,
    slice_at,
    slices_of,
)
from pullzone.spec.ranges import parse_content_range

S = SLICE_SIZE


def head(status: int, *fields: tuple[str, str], length: int | None = None) -> ResponseHead:
    return ResponseHead(status, "", tuple(fields), 0.0, 0.0, length)


def part(first: int, last: int, total: int, *fields: tuple[str, str]) -> ResponseHead:
    return head(
        206,
        ("Content-Range", f"bytes {first}-{last}/{total}"),
        *(fields or (("ETag", '"a"'),)),
        length=last - first + 1,
    )


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("bytes 0-9/100", (0, 9, 100)),
        ("Bytes  5-5/6", (5, 5, 6)),
        ("bytes 0-9/*", None),  # unknown length: nothing to slice by
        ("bytes */100", None),  # a 416's
        ("bytes 9-0/100", None),
        ("bytes 0-100/100", None),  # past the end
        ("items 0-9/100", None),
        ("bytes 0-9", None),
        ("bytes -1-9/100", None),
        (None, None),
    ],
)
def test_content_range(value: str | None, parsed: tuple[int, int, int] | None) -> None:
    assert parse_content_range(value) == parsed


def test_slice_positions_and_keys() -> None:
    assert (Slice(0).first, Slice(0).last) == (0, S - 1)
    assert Slice(3).range_field() == ("Range", f"bytes={3 * S}-{4 * S - 1}")
    assert Slice(0).key("k") == "k"  # the first slice is found where the object would be
    assert Slice(2).key("k") != Slice(1).key("k") != "k"
    assert slice_at(S - 1) == Slice(0) and slice_at(S) == Slice(1)
    assert list(slices_of(S - 1, S)) == [0, 1]
    assert list(slices_of(0, 0)) == [0]


@pytest.mark.parametrize(
    ("value", "first"),
    [
        (None, 0),
        ("bytes=100-199", 100),
        ("bytes=500-,100-199", 100),
        ("bytes=-100", 0),  # a suffix: where it starts is known from the first slice
        ("bytes=100-199,-5", 0),
        ("items=5-9", 0),
        ("bytes=x-9", 0),
    ],
)
def test_first_wanted(value: str | None, first: int) -> None:
    assert first_wanted(value) == first


def test_a_part_of_exactly_the_slice_is_stored_as_it_is() -> None:
    got = part(S, 2 * S - 1, 10 * S)
    assert received(Slice(1), got) == got
    last = part(9 * S, 10 * S - 6, 10 * S - 5)  # the object ends inside its last slice
    assert received(Slice(9), last) == last


def test_a_whole_object_in_one_part_is_the_object() -> None:
    whole = received(Slice(0), part(0, 999, 1000))
    assert whole is not None
    assert (whole.status, whole.length) == (200, 1000)
    assert all(name.lower() != "content-range" for name, _ in whole.headers)


@pytest.mark.parametrize(
    ("asked", "answer"),
    [
        (Slice(1), part(0, S - 1, 10 * S)),  # other bytes than asked for
        (Slice(1), part(S, S + 10, 10 * S)),  # fewer bytes than the slice holds
        (Slice(1), part(S, 2 * S - 1, 10 * S, ("ETag", 'W/"a"'))),  # no strong validator
        (Slice(1), part(S, 2 * S - 1, 10 * S, ("Content-Type", "x/y"))),  # no validator
        (Slice(1), head(200, ("ETag", '"a"'), length=10 * S)),  # its whole body for a part
        (Slice(1), head(206, ("Content-Type", "multipart/byteranges; boundary=x"))),
    ],
)
def test_what_is_no_slice_is_not_used(asked: Slice, answer: ResponseHead) -> None:
    assert received(asked, answer) is None


def test_other_answers_go_to_the_usual_decisions() -> None:
    ignored = head(200, length=5 * S)  # the origin ignores ranges: the object, whole
    assert received(Slice(0), ignored) == ignored
    missing = head(404)
    assert received(Slice(3), missing) == missing


def test_identity_is_length_and_strong_validator() -> None:
    assert identity(part(0, S - 1, 10 * S)) == Identity(10 * S, '"a"')
    modified = ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")
    assert identity(part(0, S - 1, 10 * S, modified)) == Identity(10 * S, modified[1])
    assert identity(part(0, S - 1, 10 * S)) != identity(part(0, S - 1, 11 * S))
    assert identity(head(200, ("ETag", '"a"'))) is None  # a whole object is no slice
