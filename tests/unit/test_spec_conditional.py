"""Conditional requests on a stored representation (RFC 9110 §13)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullzone.spec.conditional import (
    etag_list,
    evaluate_preconditions,
    if_range_ok,
    strong_match,
    weak_match,
)
from pullzone.spec.dates import format_http_date
from pullzone.spec.headers import HeaderMap

LM = 1_600_000_000.0
LM_DATE = format_http_date(LM)
BEFORE = format_http_date(LM - 60)
AFTER = format_http_date(LM + 60)
ETAG = '"v1"'


def pre(req: HeaderMap, etag: str | None = ETAG, last_modified: float | None = LM) -> int | None:
    return evaluate_preconditions(req, etag=etag, last_modified=last_modified)


# -- entity-tags -------------------------------------------------------------------------


def test_etag_list_splits_strong_and_weak_tags() -> None:
    assert etag_list('"a", W/"b" ,"c"') == ['"a"', 'W/"b"', '"c"']


def test_etag_list_keeps_commas_inside_quotes() -> None:
    assert etag_list('"a,b", W/"c, d"') == ['"a,b"', 'W/"c, d"']


def test_etag_list_star_and_empty() -> None:
    assert etag_list("*") == ["*"]
    assert etag_list(" * ") == ["*"]
    assert etag_list(None) == []
    assert etag_list("") == []


def test_etag_list_is_tolerant_of_unquoted_and_unterminated_tags() -> None:
    assert etag_list('abc, "x"') == ["abc", '"x"']
    assert etag_list('"x", "unterminated') == ['"x"', '"unterminated']


_etagc = st.text(alphabet=st.characters(codec="ascii", exclude_characters='"\x00\r\n'), max_size=10)
_tag = st.builds(lambda weak, opaque: ("W/" if weak else "") + f'"{opaque}"', st.booleans(), _etagc)


@given(st.lists(_tag, max_size=6), st.sampled_from([",", ", ", " , "]))
def test_etag_list_recovers_any_list_of_entity_tags(tags: list[str], sep: str) -> None:
    assert etag_list(sep.join(tags)) == tags


@given(st.text())
def test_etag_list_never_raises(text: str) -> None:
    assert isinstance(etag_list(text), list)


@pytest.mark.parametrize(
    ("a", "b", "weak", "strong"),
    [
        ('W/"1"', 'W/"1"', True, False),
        ('W/"1"', 'W/"2"', False, False),
        ('W/"1"', '"1"', True, False),
        ('"1"', '"1"', True, True),
        ('"1"', '"2"', False, False),
    ],
)
def test_weak_and_strong_comparison_table_of_rfc_9110(
    a: str, b: str, weak: bool, strong: bool
) -> None:
    # RFC 9110 §8.8.3.2's example table, both ways round.
    assert weak_match(a, b) is weak
    assert weak_match(b, a) is weak
    assert strong_match(a, b) is strong
    assert strong_match(b, a) is strong


# -- precondition evaluation ---------------------------------------------------------------


def test_no_conditions_carry_on() -> None:
    assert pre({}) is None


def test_if_none_match_with_the_current_etag_is_not_modified() -> None:
    assert pre({"if-none-match": '"v0", "v1"'}) == 304


def test_if_none_match_uses_weak_comparison() -> None:
    assert pre({"if-none-match": 'W/"v1"'}) == 304
    assert pre({"if-none-match": '"v1"'}, etag='W/"v1"') == 304


def test_if_none_match_with_another_etag_carries_on() -> None:
    assert pre({"if-none-match": '"v2"'}) is None


def test_if_none_match_star_matches_any_stored_representation() -> None:
    assert pre({"if-none-match": "*"}) == 304
    assert pre({"if-none-match": "*"}, etag=None) == 304


def test_if_none_match_without_a_stored_etag_carries_on() -> None:
    assert pre({"if-none-match": '"v1"'}, etag=None) is None


def test_if_modified_since_not_modified_gives_304() -> None:
    assert pre({"if-modified-since": LM_DATE}) == 304
    assert pre({"if-modified-since": AFTER}) == 304


def test_if_modified_since_before_last_modified_carries_on() -> None:
    assert pre({"if-modified-since": BEFORE}) is None


def test_if_modified_since_is_ignored_when_if_none_match_is_present() -> None:
    assert pre({"if-none-match": '"other"', "if-modified-since": AFTER}) is None


@pytest.mark.parametrize("value", ["yesterday", "0", f"{LM_DATE}, {LM_DATE}"])
def test_invalid_if_modified_since_is_ignored(value: str) -> None:
    assert pre({"if-modified-since": value}) is None


def test_if_modified_since_is_ignored_without_last_modified() -> None:
    assert pre({"if-modified-since": AFTER}, last_modified=None) is None


def test_if_match_with_another_etag_fails() -> None:
    assert pre({"if-match": '"v2"'}) == 412


def test_if_match_uses_strong_comparison() -> None:
    assert pre({"if-match": '"v1"'}) is None
    assert pre({"if-match": 'W/"v1"'}) == 412
    assert pre({"if-match": '"v1"'}, etag='W/"v1"') == 412


def test_if_match_star_passes_for_a_stored_representation() -> None:
    assert pre({"if-match": "*"}, etag=None) is None


def test_if_match_without_a_stored_etag_fails() -> None:
    assert pre({"if-match": '"v1"'}, etag=None) == 412


def test_if_unmodified_since_fails_when_modified_after() -> None:
    assert pre({"if-unmodified-since": BEFORE}) == 412
    assert pre({"if-unmodified-since": LM_DATE}) is None


def test_if_unmodified_since_is_ignored_when_if_match_is_present() -> None:
    assert pre({"if-match": '"v1"', "if-unmodified-since": BEFORE}) is None


def test_if_unmodified_since_invalid_or_without_last_modified_is_ignored() -> None:
    assert pre({"if-unmodified-since": "garbage"}) is None
    assert pre({"if-unmodified-since": BEFORE}, last_modified=None) is None


def test_failed_if_match_wins_over_a_matching_if_none_match() -> None:
    assert pre({"if-match": '"nope"', "if-none-match": '"v1"'}) == 412


def test_passing_if_match_then_if_none_match_gives_304() -> None:
    assert pre({"if-match": '"v1"', "if-none-match": '"v1"'}) == 304


# -- If-Range ------------------------------------------------------------------------------


def test_if_range_absent_allows_the_range() -> None:
    assert if_range_ok(None, etag=ETAG, last_modified=LM)


def test_if_range_etag_needs_a_strong_match() -> None:
    assert if_range_ok('"v1"', etag=ETAG, last_modified=LM)
    assert not if_range_ok('"v2"', etag=ETAG, last_modified=LM)
    assert not if_range_ok('W/"v1"', etag=ETAG, last_modified=LM)
    assert not if_range_ok('"v1"', etag='W/"v1"', last_modified=LM)
    assert not if_range_ok('"v1"', etag=None, last_modified=LM)


def test_if_range_date_must_equal_last_modified_exactly() -> None:
    assert if_range_ok(LM_DATE, etag=ETAG, last_modified=LM)
    assert not if_range_ok(AFTER, etag=ETAG, last_modified=LM)
    assert not if_range_ok(BEFORE, etag=ETAG, last_modified=LM)
    assert not if_range_ok(LM_DATE, etag=ETAG, last_modified=None)


def test_invalid_if_range_sends_the_whole_representation() -> None:
    assert not if_range_ok("garbage", etag=ETAG, last_modified=LM)
