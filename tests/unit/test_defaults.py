"""docs/commands.md states the defaults of `pullzone serve` that pullzone.defaults holds."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from pullzone import defaults
from pullzone.cli.serve import DEFAULT_API, DEFAULT_EDGE
from pullzone.config import FD_RESERVE
from pullzone.zones.durations import parse_size, size_text

COMMANDS = (Path(__file__).parents[2] / "docs" / "commands.md").read_text()

STATED: dict[str, tuple[Callable[[str], object], object]] = {
    "--edge": (str, str(DEFAULT_EDGE)),
    "--api": (str, str(DEFAULT_API)),
    "--max-cache-size": (parse_size, defaults.MAX_CACHE_SIZE),
    "--max-object-size": (parse_size, defaults.MAX_OBJECT_SIZE),
    "--edge-domain": (str, defaults.EDGE_DOMAIN),
    "--origin-timeout": (float, defaults.ORIGIN_TIMEOUT),
    "--api-rate-limit": (float, defaults.API_RATE),
    "--api-burst": (int, defaults.API_BURST),
    "--access-log-format": (str, defaults.ACCESS_LOG_FORMAT),
    "--role": (str, defaults.ROLE),
    "--replicas": (int, defaults.REPLICAS),
    "--purge-wait": (float, defaults.PURGE_WAIT),
    "--max-bus-silence": (float, defaults.MAX_BUS_SILENCE),
}


def default_cells() -> dict[str, str]:
    """The default cell of each row `| `--flag VALUE` | `ENV` | default | what |` of the
    first table that has the flag (serve's), by flag."""
    cells: dict[str, str] = {}
    for line in COMMANDS.splitlines():
        row = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]
        if len(row) == 6 and row[1].startswith("`--"):
            cells.setdefault(row[1][1:].split()[0].rstrip("`"), row[3])
    return cells


def test_the_commands_page_tables_state_the_defaults() -> None:
    cells = default_cells()
    for flag, (parse, expected) in STATED.items():
        assert flag in cells, f"no row for {flag} in docs/commands.md"
        value = re.match(r"`([^`]+)`", cells[flag])
        assert value is not None, f"{flag}: the default is not the cell's first `code`"
        assert parse(value.group(1)) == expected, f"{flag}: docs/commands.md says {value.group(1)}"


def test_the_commands_page_states_the_derived_defaults() -> None:
    cells = default_cells()
    assert f" \u2212 {FD_RESERVE}) / 2" in cells["--worker-connections"]  # a minus sign
    assert f"edge on {DEFAULT_EDGE}, API on {DEFAULT_API}" in COMMANDS


def test_size_text_is_read_back_as_the_same_size() -> None:
    assert [size_text(n) for n in (10 * 1024**3, 1024**3, 512 * 1024**2, 1000, 0)] == [
        "10GiB",
        "1GiB",
        "512MiB",
        "1000",
        "0",
    ]
    for n in (defaults.MAX_CACHE_SIZE, defaults.MAX_OBJECT_SIZE, 3 * 1024**4, 1536, 1):
        assert parse_size(size_text(n)) == n
