from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from origin import Origin
from server import Server

_aliases = itertools.count(1)


@pytest.fixture(scope="session")
def origin() -> Iterator[Origin]:
    o = Origin()
    yield o
    o.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("serve") / "data", "--origin-timeout", "2").start()
    yield s
    s.stop()


@pytest.fixture()
def zone(server: Server, origin: Origin, request: pytest.FixtureRequest) -> dict[str, object]:
    """A fresh zone on the shared server, pointing at the shared origin."""
    marker = request.node.get_closest_marker("zone")
    fields = marker.kwargs if marker else {}
    return server.create_zone(origin.url, alias=f"z{next(_aliases)}", **fields)


@pytest.fixture()
def path(request: pytest.FixtureRequest) -> str:
    """A path no other test uses."""
    return f"/{request.node.name.replace('[', '_').replace(']', '')}/object.txt"
