"""Header maps and list fields (RFC 9110 §5, §7.6.1)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pullzone.spec.headers import HOP_BY_HOP, connection_tokens, header_map, split_list


def test_header_map_lower_cases_names_and_keeps_values() -> None:
    assert header_map([("Content-Type", "Text/HTML"), ("ETag", '"A"')]) == {
        "content-type": "Text/HTML",
        "etag": '"A"',
    }


def test_header_map_combines_repeated_fields_in_order_with_comma_space() -> None:
    hmap = header_map([("Vary", "Accept"), ("X-Other", "1"), ("vary", "Accept-Encoding")])
    assert hmap["vary"] == "Accept, Accept-Encoding"


def test_header_map_combines_set_cookie_so_presence_is_visible() -> None:
    hmap = header_map([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert "set-cookie" in hmap
    assert hmap["set-cookie"] == "a=1, b=2"


def test_header_map_accepts_a_generator() -> None:
    assert header_map((n, v) for n, v in [("A", "1")]) == {"a": "1"}


def test_hop_by_hop_lists_the_connection_specific_fields() -> None:
    assert {"connection", "keep-alive", "transfer-encoding", "te", "upgrade"} <= HOP_BY_HOP
    assert "proxy-authorization" in HOP_BY_HOP
    assert "content-length" not in HOP_BY_HOP
    assert "cache-control" not in HOP_BY_HOP


def test_connection_tokens_are_lower_cased_field_names() -> None:
    assert connection_tokens("close, X-Secret ,Keep-Alive") == {"close", "x-secret", "keep-alive"}


def test_connection_tokens_of_absent_or_empty_value_is_empty() -> None:
    assert connection_tokens(None) == set()
    assert connection_tokens("") == set()
    assert connection_tokens(" , ,") == set()


def test_split_list_trims_members_and_drops_empty_ones() -> None:
    assert split_list(" a ,b,, \tc\t,") == ["a", "b", "c"]


def test_split_list_keeps_commas_inside_quoted_strings() -> None:
    assert split_list('no-cache="set-cookie, x-a", max-age=5') == [
        'no-cache="set-cookie, x-a"',
        "max-age=5",
    ]


def test_split_list_honours_escaped_quotes_inside_quoted_strings() -> None:
    assert split_list(r'"a\", b", c') == [r'"a\", b"', "c"]


def test_split_list_of_none_or_empty_is_empty() -> None:
    assert split_list(None) == []
    assert split_list("") == []


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-!#$%&'*+.^_`|~", min_size=1)


@given(st.lists(_token, max_size=8), st.sampled_from([",", ", ", " ,", " , ", "\t,\t"]))
def test_split_list_recovers_tokens_whatever_the_separator_spacing(
    tokens: list[str], sep: str
) -> None:
    assert split_list(sep.join(tokens)) == tokens


@given(st.text())
def test_split_list_never_raises_and_never_yields_empty_or_padded_members(text: str) -> None:
    for member in split_list(text):
        assert member
        assert member == member.strip(" \t")
