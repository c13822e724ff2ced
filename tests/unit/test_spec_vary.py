"""Secondary keys from Vary (RFC 9111 §4.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullzone.spec.vary import vary_names, vary_values


def test_no_vary_is_an_empty_tuple() -> None:
    assert vary_names({}) == ()
    assert vary_names({"vary": ""}) == ()


def test_vary_names_are_lower_cased_unique_and_sorted() -> None:
    resp = {"vary": "User-Agent, accept-encoding, Accept-Encoding,Accept"}
    assert vary_names(resp) == ("accept", "accept-encoding", "user-agent")


def test_vary_star_never_matches() -> None:
    assert vary_names({"vary": "*"}) is None
    assert vary_names({"vary": "Accept, *"}) is None


def test_vary_values_follow_the_names_and_mark_missing_fields_none() -> None:
    req = {"accept-encoding": "gzip", "user-agent": "x"}
    assert vary_values(("accept-encoding", "cookie"), req) == ("gzip", None)


def test_empty_request_value_differs_from_a_missing_one() -> None:
    assert vary_values(("accept",), {"accept": ""}) != vary_values(("accept",), {})


def test_whitespace_around_commas_does_not_change_the_key() -> None:
    names = ("accept-language",)
    a = vary_values(names, {"accept-language": "en,fr"})
    b = vary_values(names, {"accept-language": " en ,  fr "})
    assert a == b == ("en, fr",)


def test_list_order_is_significant() -> None:
    names = ("accept-language",)
    a = vary_values(names, {"accept-language": "en, fr"})
    b = vary_values(names, {"accept-language": "fr, en"})
    assert a != b


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("gzip, deflate, br, zstd", "br, gzip"),  # Chrome
        ("br, gzip", "br, gzip"),
        ("gzip,br", "br, gzip"),
        ("gzip, deflate", "gzip"),  # curl --compressed without brotli
        ("x-gzip", "gzip"),
        ("br;q=1, gzip;q=0", "br"),
        ("*", "br, gzip"),
        ("*;q=0, gzip", "gzip"),
        ("deflate", "identity"),
        ("identity", "identity"),
        ("GZIP;Q=0.5", "gzip"),
        ("", "identity"),
        (None, "identity"),
    ],
)
def test_accept_encoding_keys_one_of_four_variants(value: str | None, key: str) -> None:
    """Browsers' spellings reduce to what can change the answer (RFC 9111 §4.1)."""
    req = {} if value is None else {"accept-encoding": value}
    assert vary_values(("accept-encoding",), req) == (key,)


def test_different_values_give_different_keys() -> None:
    names = ("accept-language",)
    assert vary_values(names, {"accept-language": "en"}) != vary_values(
        names, {"accept-language": "fr"}
    )


def test_no_names_gives_an_empty_key() -> None:
    assert vary_values((), {"accept": "x"}) == ()


_member = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/;=.*", min_size=1, max_size=8)


@given(st.lists(_member, min_size=1, max_size=5), st.lists(st.sampled_from(["", " ", "\t"])))
def test_normalisation_is_insensitive_to_optional_whitespace(
    members: list[str], pads: list[str]
) -> None:
    pad = "".join(pads)
    tight = ",".join(members)
    loose = f"{pad},{pad}".join(members)
    names = ("x",)
    assert vary_values(names, {"x": tight}) == vary_values(names, {"x": pad + loose + pad})


@given(st.text(max_size=40))
def test_normalising_twice_changes_nothing(value: str) -> None:
    once = vary_values(("x",), {"x": value})[0]
    assert once is not None
    assert vary_values(("x",), {"x": once}) == (once,)
