"""What the commands print: zone and key tables, purge summaries, new keys, and errors that
end with exit code 1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pullzone.client import ApiKey, Certificate, NewKey, PurgeResult, Zone

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print `error: MESSAGE` on stderr and exit with code 1."""
    err.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(1)


def print_zones(zones: list[Zone]) -> None:
    """The zones as a table, or a hint on stderr when there are none."""
    if not zones:
        err.print("no zones yet: create one with `pullzone zones create --name N --origin URL`")
        return
    table = Table(header_style="bold")
    for column in ("id", "name", "fqdn", "origin", "cnames", "status"):
        table.add_column(column, overflow="fold")
    for zone in zones:
        cells = (zone.id, zone.name, zone.fqdn, zone.origin, ",".join(zone.cnames))
        table.add_row(
            *(Text(str(cell)) for cell in cells),
            Text(zone.status, style="red" if zone.disabled else "green"),
        )
    out.print(table)


def print_zone(zone: Zone) -> None:
    """One zone, a field a line, in the API's names; the cache block's as `cache.NAME`."""
    policy = zone.cache
    rows = {
        "id": zone.id,
        "name": zone.name,
        "alias": zone.alias,
        "fqdn": zone.fqdn,
        "origin": zone.origin,
        "hostHeader": zone.host_header,
        "cnames": ",".join(zone.cnames),
        "status": zone.status,
        "created_at": zone.created_at,
        "updated_at": zone.updated_at,
        "cache.cache": policy.cache,
        "cache.expiry": policy.expiry,
        **{
            f"cache.{flag}": "Y" if getattr(policy, flag) else "N"
            for flag in ("querystring", "cachecontrol", "usestale", "revalidate")
        },
        **{
            f"ssl.{flag}": "Y" if getattr(zone.ssl, flag) else "N"
            for flag in ("enabled", "http2", "redirect")
        },
        "ssl.mode": zone.ssl.mode,
        "ssl.certid": zone.ssl.certid,
        "ssl.warning": zone.ssl.warning,
        **({"backup": zone.backup} if zone.backup else {}),
        # The other blocks, field by field, in the names `zones set` takes.
        **{
            f"{block}.{name}": ",".join(value) if isinstance(value, list) else value
            for block, fields in zone.blocks.items()
            for name, value in fields.items()
        },
        **{f"warning {n}": text for n, text in enumerate(zone.warnings, 1)},
    }
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows.items():
        grid.add_row(key, Text('""' if value == "" else str(value)))
    out.print(grid)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def purge_kind(delete: bool) -> str:
    return "hard purge (removed)" if delete else "soft purge (stale, revalidated on next request)"


def print_purge(
    result: PurgeResult, zone_id: int, paths: list[str], tags: list[str], delete: bool
) -> None:
    """What was purged, and on stderr the edges that have not confirmed it yet."""
    scope = [plural(len(paths), "path")] if paths else []
    if tags:
        scope.append(plural(len(tags), "tag"))
    line = Text.assemble(
        (result.message, "green"),
        f": zone {zone_id}, {' and '.join(scope) or 'everything'}, {purge_kind(delete)}",
    )
    if result.purged is not None:
        line.append(f", {plural(result.purged, 'object')} purged")
    out.print(line)
    warn_pending(result.pending)


def warn_pending(
    pending: Iterable[str], meaning: str = "they apply it before serving again"
) -> None:
    """On stderr, the edges that had not confirmed a change when the answer came."""
    names = ", ".join(sorted(set(pending)))
    if names:
        err.print(
            Text.assemble(
                ("warning: ", "bold yellow"),
                f"edges that have not confirmed yet ({meaning}): {names}",
            )
        )


# --- API keys --------------------------------------------------------------------------------


def key_zones(key: ApiKey) -> str:
    if key.zones is None:
        return "all"
    return ", ".join(map(str, key.zones)) if key.zones else "none"


def key_access(key: ApiKey) -> str:
    if key.admin:
        return "everything"
    if key.permission:  # `update` includes purging (docs/api.md, Keys and scopes)
        return ", ".join("update, purge" if p == "update" else p for p in key.permission)
    # a server that predates permissions
    return "read, purge" if key.purge_only else "read, write, purge"


def print_keys(keys: list[ApiKey]) -> None:
    """The keys as a table (never a secret: the API has none to give)."""
    if not keys:
        err.print("no API keys: create one with `pullzone keys create --name N`")
        return
    table = Table(header_style="bold")
    table.add_column("id", no_wrap=True)  # what `keys revoke` takes: never folded
    for column in ("name", "zones", "may", "created (UTC)", "status"):
        table.add_column(column, overflow="fold")
    for key in keys:
        revoked = key.revoked_at
        status = Text(f"revoked {revoked}", "red") if revoked else Text("active", "green")
        table.add_row(
            Text(key.id),
            Text(key.name),
            Text(key_zones(key)),
            Text(key_access(key)),
            Text(key.created_at),
            status,
        )
    out.print(table)


def print_new_key(created: NewKey) -> None:
    """What was created on stderr, then the secret alone on stdout, so that
    `KEY=$(pullzone keys create --name ci)` captures exactly the key."""
    key = created.key
    err.print(
        Text.assemble(
            ("Key Created", "green"),
            f": id {key.id} ({key.name}), zones: {key_zones(key)}, may: {key_access(key)}",
        )
    )
    err.print(
        Text(
            "Secret (shown only this once: store it now; send it as X-API-Key, or set "
            "PULLZONE_API_KEY for the pullzone commands):",
            style="bold yellow",
        )
    )
    out.print(Text(created.secret, style="bold"))


# --- certificates ----------------------------------------------------------------------------


def print_certs(certs: list[Certificate]) -> None:
    """The account certificates as a table (never a key: the API has none to give)."""
    if not certs:
        err.print("no certificates: upload one with `pullzone certs upload NAME --crt F --key F`")
        return
    table = Table(header_style="bold")
    table.add_column("id", no_wrap=True)
    for column in ("name", "domain", "names", "expiry (UTC)", "zones"):
        table.add_column(column, overflow="fold")
    for cert in certs:
        table.add_row(
            Text(str(cert.id)),
            Text(cert.name),
            Text(cert.domain),
            Text(", ".join(cert.sans)),
            Text(cert.expiry + (" expired" if cert.expired else ""), "red" if cert.expired else ""),
            Text(", ".join(map(str, cert.zones)) or "none"),
        )
    out.print(table)


def print_cert(cert: Certificate) -> None:
    """One certificate, a field a line; the key is never shown."""
    rows = {
        "id": cert.id,
        "name": cert.name,
        "domain": cert.domain,
        "sans": ", ".join(cert.sans),
        "validFrom": cert.valid_from,
        "expiry": cert.expiry + (" (expired)" if cert.expired else ""),
        "installs": cert.installs,
        "zones": ", ".join(map(str, cert.zones)),
        "source": cert.source,
        "created_at": cert.created_at,
        "updated_at": cert.updated_at,
        "intermediates": cert.cabundle.count("BEGIN CERTIFICATE"),
    }
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows.items():
        grid.add_row(key, Text('""' if value == "" else str(value)))
    out.print(grid)
