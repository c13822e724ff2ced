"""`pullzone zones list|show|create|update|set|ssl|delete`: pull zones through the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from pullzone.cli import options
from pullzone.cli.certs import pem_file
from pullzone.cli.connection import Api, client_command
from pullzone.cli.options import with_options
from pullzone.cli.output import out, print_zone, print_zones
from pullzone.cli.zone_lookup import ZoneRef, find_zone_id
from pullzone.client import Zone
from pullzone.client import _requests as calls

zones_app = typer.Typer(
    help="Create, show, change and delete pull zones through the API.", no_args_is_help=True
)


def _opt(name: str, help: str, *, metavar: str = "TEXT", **extra: Any) -> Any:
    return typer.Option(name, metavar=metavar, show_default=False, help=help, **extra)


def _flag(name: str, help: str) -> Any:
    return _opt(name, help, metavar="Y|N", callback=options.yes_no, rich_help_panel="Cache")


def _name_option() -> Any:
    return _opt("--name", "Zone name.")


def _origin_option() -> Any:
    return _opt(
        "--origin", "Origin URL (http:// or https://).", metavar="URL", callback=options.origin
    )


Alias = Annotated[str | None, _opt("--alias", "Zone alias: the zone answers on ALIAS.EDGE_DOMAIN.")]
Cnames = Annotated[
    str | None,
    _opt("--cnames", "Comma-separated hostnames (or IPs) the zone answers on.", metavar="a,b"),
]
HostHeader = Annotated[
    str | None, _opt("--host-header", "Host header sent to the origin.", metavar="HOST")
]
Cache = Annotated[
    str | None,
    _opt(
        "--cache",
        "Edge TTL when the origin gives none (30m, 4h, 1d, 1M; 0: heuristics only).",
        metavar="DURATION",
        callback=options.duration,
        rich_help_panel="Cache",
    ),
]
Expiry = Annotated[
    str | None,
    _opt(
        "--expiry",
        'max-age sent to clients ("": pass the origin\'s through).',
        metavar="DURATION",
        callback=options.duration,
        rich_help_panel="Cache",
    ),
]
Querystring = Annotated[str | None, _flag("--querystring", "Query string is part of the key.")]
Cachecontrol = Annotated[
    str | None, _flag("--cachecontrol", "Honour the origin's Cache-Control/Expires.")
]
Usestale = Annotated[str | None, _flag("--usestale", "Serve stale content when the origin fails.")]
Revalidate = Annotated[
    str | None, _flag("--revalidate", "Revalidate expired objects with conditional requests.")
]


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _cnames(value: str | None) -> str | None:
    if value is None:
        return None
    return ",".join(part.strip() for part in value.split(",") if part.strip())


def zone_options(
    alias: Alias = None,
    cnames: Cnames = None,
    host_header: HostHeader = None,
    cache: Cache = None,
    expiry: Expiry = None,
    querystring: Querystring = None,
    cachecontrol: Cachecontrol = None,
    usestale: Usestale = None,
    revalidate: Revalidate = None,
) -> dict[str, Any]:
    """The zone fields (and cache block) of the options given, as the SDK takes them."""
    fields = _given(alias=alias, cnames=_cnames(cnames), host_header=host_header)
    cache_block = _given(
        cache=cache,
        expiry=expiry,
        querystring=querystring,
        cachecontrol=cachecontrol,
        usestale=usestale,
        revalidate=revalidate,
    )
    return {**fields, "cache": cache_block} if cache_block else fields


with_zone_options = with_options(zone_options, "changes")


def update_call(zone_id: int, changes: dict[str, Any]) -> calls.Call[Zone]:
    """Cache options alone change the cache block alone; else one update with a cache block."""
    if set(changes) == {"cache"}:
        return calls.update_cache(zone_id, **changes["cache"])
    return calls.update_zone(zone_id, **changes)


def _done(what: str) -> Callable[[Zone], None]:
    def show(zone: Zone) -> None:
        out.print(Text(f"Zone {what}: id {zone.id} ({zone.fqdn})", "green"))
        print_zone(zone)

    return show


@zones_app.command("list")
@client_command
def zones_list(api: Api) -> None:
    """List the zones."""
    api.run(calls.list_zones(), print_zones)


@zones_app.command("show")
@client_command
def zones_show(zone: ZoneRef, api: Api) -> None:
    """Show one zone."""
    api.run(lambda client: calls.get_zone(find_zone_id(client, zone)), print_zone)


@zones_app.command("create")
@client_command
@with_zone_options
def zones_create(
    name: Annotated[str, _name_option()],
    origin: Annotated[str, _origin_option()],
    changes: dict[str, Any],
    api: Api,
) -> None:
    """Create a zone."""
    api.run(calls.create_zone(name, origin, **changes), _done("created"))


@zones_app.command("update")
@client_command
@with_zone_options
def zones_update(
    zone: ZoneRef,
    changes: dict[str, Any],
    api: Api,
    name: Annotated[str | None, _name_option()] = None,
    origin: Annotated[str | None, _origin_option()] = None,
) -> None:
    """Change a zone: only the options given change."""
    changes = {**_given(name=name, origin=origin), **changes}
    if not changes:
        api.ctx.fail("nothing to change: give at least one option (see --help)")
    api.run(lambda client: update_call(find_zone_id(client, zone), changes), _done("updated"))


def parse_settings(settings: list[str]) -> dict[str, Any]:
    """`FIELD=VALUE` and `BLOCK.FIELD=VALUE` words as the update body they stand for:
    `securetoken.enabled=Y` → `{"securetoken": {"enabled": "Y"}}`. Values are sent as text
    (lists comma-separated), which the API reads as it reads a form."""
    body: dict[str, Any] = {}
    for word in settings:
        name, sep, value = word.partition("=")
        block, dot, field = name.strip().partition(".")
        if not sep or not block or (dot and not field) or "." in field:
            raise typer.BadParameter(
                f"{word!r}: give FIELD=VALUE or BLOCK.FIELD=VALUE (e.g. securetoken.enabled=Y)"
            )
        target = body.setdefault(block, {}) if dot else body
        key = field if dot else block
        if not isinstance(target, dict) or key in target:
            raise typer.BadParameter(f"{name!r} is given twice (or as a value and a block)")
        target[key] = value
    return body


@zones_app.command("set")
@client_command
def zones_set(
    zone: ZoneRef,
    settings: Annotated[
        list[str],
        typer.Argument(
            metavar="FIELD=VALUE...",
            help="Zone fields (backup=URL, name=…) and block fields (securetoken.enabled=Y, "
            "ipaccess.list=10.0.0.0/8,192.0.2.1, edge.compressionlevel=6; docs/zones.md).",
        ),
    ],
    api: Api,
) -> None:
    """Set zone and block fields in one update: only the fields given change."""
    try:
        changes = parse_settings(settings)
    except typer.BadParameter as exc:
        api.ctx.fail(str(exc))
    api.run(
        lambda client: calls.update_zone(find_zone_id(client, zone), extra=changes),
        _done("updated"),
    )


def _ssl_flag(name: str, help: str) -> Any:
    return _opt(name, help, metavar="Y|N", callback=options.yes_no)


def _pem(name: str, help: str) -> Any:
    return typer.Option(
        name, metavar="FILE", dir_okay=False, exists=True, show_default=False, help=help
    )


@zones_app.command("ssl")
@client_command
def zones_ssl(
    zone: ZoneRef,
    api: Api,
    enabled: Annotated[str | None, _ssl_flag("--enabled", "Serve the zone over HTTPS.")] = None,
    http2: Annotated[str | None, _ssl_flag("--http2", "Offer HTTP/2 besides HTTP/1.1.")] = None,
    redirect: Annotated[
        str | None, _ssl_flag("--redirect", "Redirect plain HTTP to https.")
    ] = None,
    certid: Annotated[
        int | None,
        _opt("--certid", "Serve this account certificate (0: none).", metavar="ID", min=0),
    ] = None,
    crt: Annotated[Path | None, _pem("--crt", "Upload this PEM certificate for the zone.")] = None,
    key: Annotated[Path | None, _pem("--key", "Its PEM private key (with --crt).")] = None,
    cabundle: Annotated[Path | None, _pem("--cabundle", "Its PEM intermediates.")] = None,
) -> None:
    """Change a zone's ssl block: only the options given change."""
    if (crt is None) != (key is None):
        api.ctx.fail("give --crt and --key together")
    fields = _given(
        enabled=enabled,
        http2=http2,
        redirect=redirect,
        certid=certid,
        crt=pem_file(crt),
        key=pem_file(key),
        cabundle=pem_file(cabundle),
    )
    if not fields:
        api.ctx.fail("nothing to change: give at least one option (see --help)")
    api.run(lambda client: calls.update_ssl(find_zone_id(client, zone), **fields), _done("updated"))


@zones_app.command("delete")
@client_command
def zones_delete(zone: ZoneRef, api: Api, yes: options.Yes = False) -> None:
    """Delete a zone and its cached objects (asks first unless --yes)."""
    if not yes:
        typer.confirm(f"Delete zone {zone} and everything it has cached?", abort=True, err=True)
    api.run(
        lambda client: calls.delete_zone(find_zone_id(client, zone)),
        lambda _: out.print(Text(f"Zone Deleted: {zone}", style="green")),
    )
