"""Cache-Control directives and delta-seconds (RFC 9111 §1.2.2, §5.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullzone.spec.cache_control import delta_seconds, parse_cache_control


def test_directive_names_are_lower_cased_and_bare_directives_map_to_none() -> None:
    assert parse_cache_control("Public, MAX-AGE=60, No-Transform") == {
        "public": None,
        "max-age": "60",
        "no-transform": None,
    }


def test_quoted_arguments_are_unquoted() -> None:
    cc = parse_cache_control('private="Set-Cookie, X-Id", max-age="30"')
    assert cc == {"private": "Set-Cookie, X-Id", "max-age": "30"}


def test_backslash_escapes_in_quoted_arguments_are_resolved() -> None:
    assert parse_cache_control(r'ext="a\"b\\c"') == {"ext": 'a"b\\c'}


def test_first_occurrence_of_a_repeated_directive_wins() -> None:
    assert parse_cache_control("max-age=10, s-maxage=1, max-age=99")["max-age"] == "10"
    assert parse_cache_control('max-age="5", max-age=7')["max-age"] == "5"


def test_whitespace_around_members_and_equals_is_tolerated() -> None:
    assert parse_cache_control(" max-age = 60 ,\tno-cache ") == {
        "max-age": "60",
        "no-cache": None,
    }


def test_junk_members_are_skipped_or_kept_without_raising() -> None:
    cc = parse_cache_control(',, =5, "oops, no-store,;;')
    assert "" not in cc
    cc = parse_cache_control(",,=x, no-store, ,")
    assert cc == {"no-store": None}


def test_unterminated_quote_takes_the_rest() -> None:
    assert parse_cache_control('ext="abc')["ext"] == "abc"


def test_empty_argument_is_an_empty_string_not_none() -> None:
    assert parse_cache_control("max-age=") == {"max-age": ""}


@pytest.mark.parametrize("value", [None, "", " , "])
def test_absent_or_empty_cache_control_has_no_directives(value: str | None) -> None:
    assert parse_cache_control(value) == {}


@given(st.text())
def test_parse_cache_control_never_raises_and_names_are_lower_case(text: str) -> None:
    cc = parse_cache_control(text)
    for name in cc:
        assert name
        assert name == name.lower()


_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
_arg = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00"), max_size=12)


@given(st.dictionaries(_name, st.one_of(st.none(), _arg), max_size=6))
def test_serialised_directives_parse_back(directives: dict[str, str | None]) -> None:
    def quote(arg: str) -> str:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'

    text = ", ".join(n if a is None else f"{n}={quote(a)}" for n, a in directives.items())
    assert parse_cache_control(text) == directives


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("60", 60),
        (" 60 ", 60),
        ("007", 7),
        ("2147483647", 2147483647),
        ("2147483648", 2147483648),
        ("2147483649", 2147483648),
        ("99999999999999999999", 2147483648),
        ("0" * 5000 + "5", 5),
        ("9" * 5000, 2147483648),
    ],
)
def test_delta_seconds_valid_values(text: str, expected: int) -> None:
    assert delta_seconds(text) == expected


@pytest.mark.parametrize(
    "text", [None, "", " ", "-1", "+5", "1.5", "1e3", "abc", "5s", "0x10", "٣", "²", "1 2"]
)
def test_delta_seconds_invalid_values_are_none(text: str | None) -> None:
    assert delta_seconds(text) is None


@given(st.integers(min_value=0, max_value=10**30))
def test_delta_seconds_round_trips_and_caps_at_2_to_the_31(n: int) -> None:
    assert delta_seconds(str(n)) == min(n, 2**31)


@given(st.text())
def test_delta_seconds_never_raises_and_is_in_range(text: str) -> None:
    result = delta_seconds(text)
    assert result is None or 0 <= result <= 2**31
