"""Long purge (and prefetch) lists split into requests the API accepts. Pure.

The API takes at most 10,000 files and a 1 MiB body per purge request (its defaults); a
prefetch takes at most 1,000 files (`max_files=MAX_PREFETCH_FILES`), in the same body. A
batch is filled in order until the next file would break either limit, so the batches of a
list are always the same, and batch N covers a known stretch of it: a run that stops at
batch N can go on from there without purging anything twice or missing anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pullzone.client._requests import MAX_BODY_BYTES, encode_json
from pullzone.limits import MAX_PURGE_FILES

_EMPTY_BODY = len(encode_json({"files": []}))  # {"files":[]}


def purge_batches(
    files: Iterable[str],
    *,
    max_files: int = MAX_PURGE_FILES,
    max_bytes: int = MAX_BODY_BYTES,
) -> Iterator[list[str]]:
    """The files in order, as lists of at most `max_files` whose purge body
    (`{"files":[…]}`, as the client sends it) is at most `max_bytes`.

    Raises ValueError for a file that does not fit in a body on its own.
    """
    if max_files < 1:
        raise ValueError("max_files must be at least 1")
    batch: list[str] = []
    size = _EMPTY_BODY
    for file in files:
        item = len(encode_json(file)) + (1 if batch else 0)  # the comma before it
        if batch and (len(batch) == max_files or size + item > max_bytes):
            yield batch
            batch, size, item = [], _EMPTY_BODY, item - 1
        if size + item > max_bytes:
            raise ValueError(
                f"{file[:60]!r}… alone makes a purge body larger than {max_bytes} bytes"
            )
        batch.append(file)
        size += item
    if batch:
        yield batch
