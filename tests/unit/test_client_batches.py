"""`purge_batches`: long purge lists as requests the API accepts (10,000 files, 1 MiB)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullzone.client import MAX_BODY_BYTES, MAX_PREFETCH_FILES, MAX_PURGE_FILES, purge_batches
from pullzone.client._requests import encode_json, prefetch, purge


def body_size(files: list[str]) -> int:
    """The size of the purge body exactly as the client sends it."""
    content = purge(1, files).request()["content"]
    assert content == encode_json({"files": files})
    return len(content)


def test_the_limits_are_the_apis() -> None:
    assert (MAX_PURGE_FILES, MAX_BODY_BYTES) == (10_000, 1024 * 1024)


def test_short_paths_are_split_by_count() -> None:
    files = [f"/p/{i}" for i in range(25_000)]
    sizes = [len(b) for b in purge_batches(files)]
    assert sizes == [10_000, 10_000, 5_000]


def test_prefetch_lists_in_batches_of_1000() -> None:
    files = [f"/p/{i}" for i in range(2_500)]
    batches = list(purge_batches(files, max_files=MAX_PREFETCH_FILES))
    assert [len(b) for b in batches] == [1_000, 1_000, 500]
    assert [f for b in batches for f in b] == files
    assert prefetch(1, batches[0]).request()["content"] == encode_json({"files": batches[0]})


def test_long_paths_are_split_by_body_size() -> None:
    files = [f"/videos/{i:06d}/" + "x" * 88 + ".mp4" for i in range(100_000)]  # 107 chars
    batches = list(purge_batches(files))
    assert len(batches) == 11
    assert [len(b) for b in batches] == [9532] * 10 + [4680]
    assert all(body_size(b) <= MAX_BODY_BYTES for b in batches)
    assert body_size(batches[0] + batches[1][:1]) > MAX_BODY_BYTES  # each batch is full
    assert [f for b in batches for f in b] == files


def test_a_body_of_exactly_the_limit_fits() -> None:
    # {"files":["/aaa…"]} is 12 bytes of frame plus the quoted path
    exact = "/" + "a" * (100 - 12 - 2 - 1)
    assert body_size([exact]) == 100
    assert list(purge_batches([exact, "/b"], max_bytes=100)) == [[exact], ["/b"]]
    assert list(purge_batches(["/a", "/b"], max_bytes=len('{"files":["/a","/b"]}'))) == [
        ["/a", "/b"]
    ]
    assert list(purge_batches(["/a", "/b"], max_bytes=len('{"files":["/a","/b"]}') - 1)) == [
        ["/a"],
        ["/b"],
    ]


def test_sizes_are_counted_in_utf8_bytes_and_json_escapes() -> None:
    files = ["/café/é", '/quote"d', "/back\\slash"]
    for file in files:
        assert body_size([file]) == len(encode_json({"files": [file]}))
    frame = len('{"files":[]}')
    limit = frame + len(encode_json(files[0]))
    assert list(purge_batches(files[:2], max_bytes=limit)) == [[files[0]], [files[1]]]


def test_a_path_too_long_for_any_body() -> None:
    with pytest.raises(ValueError, match="alone makes a purge body larger than 50 bytes"):
        list(purge_batches(["/ok", "/" + "x" * 60], max_bytes=50))


def test_nothing_in_nothing_out() -> None:
    assert list(purge_batches([])) == []
    with pytest.raises(ValueError):
        list(purge_batches(["/a"], max_files=0))


paths = st.lists(st.text(min_size=1, max_size=40).map(lambda t: "/" + t), max_size=60)


@given(files=paths, max_files=st.integers(1, 12), max_bytes=st.integers(60, 400))
def test_batches_are_in_order_within_limits_and_full(
    files: list[str], max_files: int, max_bytes: int
) -> None:
    try:
        batches = list(purge_batches(files, max_files=max_files, max_bytes=max_bytes))
    except ValueError:
        assert any(body_size([f]) > max_bytes for f in files)
        return
    assert [f for b in batches for f in b] == files
    for batch, following in zip(batches, [*batches[1:], None], strict=False):
        assert 1 <= len(batch) <= max_files
        assert body_size(batch) <= max_bytes
        if following is not None:  # the next file would have broken a limit
            assert len(batch) == max_files or body_size([*batch, following[0]]) > max_bytes
