"""edge/disk.py: a fill's chunk written in a thread, on real files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pullzone.cache.bodies import FAILED, BodyStore, FillWriter
from pullzone.cache.stored import ResponseHead
from pullzone.edge.disk import DiskWrites

BIG = 64 * 1024 * 1024  # long enough to write that the cancellation comes during it


@pytest.fixture()
def writer(tmp_path: Path) -> FillWriter:
    claimed = FillWriter.claim(BodyStore(tmp_path / "cache"), "k")
    assert claimed is not None
    claimed.write_head(ResponseHead(200, "OK", (), 0.0, 0.0, None))
    return claimed


async def test_chunks_land_in_order(writer: FillWriter) -> None:
    disk = DiskWrites()
    try:
        for piece in (b"one ", b"two ", b"three"):
            await disk.write(writer, piece)
        assert writer.written == len(b"one two three")
        with open(writer.path, "rb") as f:
            f.seek(writer.body_offset)
            assert f.read() == b"one two three"
    finally:
        writer.end(FAILED)
        disk.close()


async def test_a_cancelled_write_is_finished_before_the_fill_sees_the_cancellation(
    writer: FillWriter,
) -> None:
    """The fill closes its file once cancelled: a write still going on in the thread
    would land in whatever file takes the descriptor's number next."""
    disk = DiskWrites()
    try:
        task = asyncio.create_task(disk.write(writer, b"x" * BIG))
        await asyncio.sleep(0)  # the task handed the write to a thread and waits
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert writer.written == BIG
        assert os.fstat(writer.fd).st_size == writer.body_offset + BIG
    finally:
        writer.end(FAILED)
        disk.close()
