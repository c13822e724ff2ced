"""Text that is not valid Unicode, found wherever it is in a decoded JSON body."""

from __future__ import annotations

import json

import pytest

from pullzone.text import invalid_text, shown


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"files": ["/a", "/b\\ud800"]}', "files[1]"),
        ('{"tags": ["\\udfff"]}', "tags[0]"),
        ('{"zone": {"cache": {"cache": "\\ud83d"}}}', "zone.cache.cache"),
        ('{"\\ud800": 1}', "a field name in the body"),
        ('"\\udc80"', "the body"),
    ],
)
def test_a_lone_surrogate_is_found_and_named(body: str, where: str) -> None:
    message = invalid_text(json.loads(body))
    assert message is not None and message.startswith(where), message


@pytest.mark.parametrize(
    "body",
    ['{"files": ["/é", "/\\ud83d\\ude00"], "n": 1, "x": null, "b": true}', "[]", "1.5"],
)
def test_valid_text_passes(body: str) -> None:
    assert invalid_text(json.loads(body)) is None  # a surrogate pair is one valid character


def test_shown_makes_stored_bad_text_printable() -> None:
    assert shown("/a\ud800") == "/a\\ud800"
    assert shown("/é") == "/é"
