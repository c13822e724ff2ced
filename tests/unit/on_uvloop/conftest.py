"""Tests here run on uvloop's event loop, as the edge's workers do (its transports are
not asyncio's classes: code that assumes they are passes on asyncio's loop only)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"uvloop": uvloop.new_event_loop}
