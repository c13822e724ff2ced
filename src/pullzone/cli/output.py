"""What the commands print: zone and key tables, purge summaries, new keys, and errors that
end with exit code 1."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print `error: MESSAGE` on stderr and exit with code 1."""
    err.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(1)


def print_zones(zones: list[dict[str, Any]]) -> None:
    """The zones as a table, or a hint on stderr when there are none."""
    if not zones:
        err.print("no zones yet: create one with `pullzone zones create --name N --origin URL`")
        return
    table = Table(header_style="bold")
    for column in ("id", "name", "fqdn", "origin", "cnames", "status"):
        table.add_column(column, overflow="fold")
    for zone in zones:
        status = str(zone.get("status", ""))
        table.add_row(
            *(Text(str(zone.get(k, ""))) for k in ("id", "name", "fqdn", "origin", "cnames")),
            Text(status, style="green" if status == "Enabled" else "red"),
        )
    out.print(table)


def print_zone(zone: dict[str, Any]) -> None:
    """One zone, a field a line; the cache block's fields as `cache.NAME`."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in zone.items():
        if key == "cnamesArr":
            continue
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                grid.add_row(f"{key}.{sub}", Text(_shown(subvalue)))
        else:
            grid.add_row(key, Text(_shown(value)))
    out.print(grid)


def _shown(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return '""' if value == "" else str(value)


def print_purge(
    answer: dict[str, Any], zone_id: int, paths: list[str], tags: list[str], delete: bool
) -> None:
    """What was purged, and on stderr the edges that have not confirmed it yet."""
    scope = []
    if paths:
        scope.append(f"{len(paths)} path{'s' * (len(paths) != 1)}")
    if tags:
        scope.append(f"{len(tags)} tag{'s' * (len(tags) != 1)}")
    kind = "hard purge (removed)" if delete else "soft purge (stale, revalidated on next request)"
    line = Text.assemble(
        (str(answer.get("message") or "Zone Purged"), "green"),
        f": zone {zone_id}, {' and '.join(scope) or 'everything'}, {kind}",
    )
    if isinstance(answer.get("purged"), int):
        line.append(f", {answer['purged']} objects purged")
    out.print(line)
    pending = answer.get("pending")
    if pending:
        names = ", ".join(map(str, pending)) if isinstance(pending, list) else str(pending)
        err.print(
            Text.assemble(
                ("warning: ", "bold yellow"),
                f"edges that have not confirmed yet (they apply it before serving again): {names}",
            )
        )


# --- API keys --------------------------------------------------------------------------------


def key_zones(key: dict[str, Any]) -> str:
    zones = key.get("zones")
    return "all" if zones is None else ", ".join(map(str, zones)) if zones else "none"


def key_access(key: dict[str, Any]) -> str:
    if key.get("admin"):
        return "everything"
    return "read, purge" if key.get("purge_only") else "read, write, purge"


def print_keys(keys: list[dict[str, Any]]) -> None:
    """The keys as a table (never a secret: the API has none to give)."""
    if not keys:
        err.print("no API keys: create one with `pullzone keys create --name N`")
        return
    table = Table(header_style="bold")
    table.add_column("id", no_wrap=True)  # what `keys revoke` takes: never folded
    for column in ("name", "zones", "may", "created (UTC)", "status"):
        table.add_column(column, overflow="fold")
    for key in keys:
        revoked = key.get("revoked_at")
        status = Text(f"revoked {revoked}", "red") if revoked else Text("active", "green")
        table.add_row(
            Text(str(key.get("id", ""))),
            Text(str(key.get("name", ""))),
            Text(key_zones(key)),
            Text(key_access(key)),
            Text(str(key.get("created_at", ""))),
            status,
        )
    out.print(table)


def print_new_key(answer: dict[str, Any]) -> None:
    """What was created on stderr, then the secret alone on stdout, so that
    `KEY=$(pullzone keys create --name ci)` captures exactly the key."""
    key = answer.get("key")
    if not isinstance(key, dict):
        key = {}
    err.print(
        Text.assemble(
            (str(answer.get("message") or "Key Created"), "green"),
            f": id {key.get('id')} ({key.get('name')}), zones: {key_zones(key)}, "
            f"may: {key_access(key)}",
        )
    )
    err.print(
        Text(
            "Secret (shown only this once: store it now; send it as X-API-Key, or set "
            "PULLZONE_API_KEY for the pullzone commands):",
            style="bold yellow",
        )
    )
    out.print(Text(str(answer.get("secret", "")), style="bold"))
