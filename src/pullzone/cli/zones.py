"""`pullzone zones list|show|create|update|delete`: pull zones through the API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from pullzone.cli import options
from pullzone.cli.connection import ApiKey, ApiUrl, AsJson, api_client, handling_api_errors, send
from pullzone.cli.output import out, print_zone, print_zones
from pullzone.cli.zone_lookup import ZoneRef, find_zone_id
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


def _given(**fields: str | None) -> dict[str, str]:
    return {name: value for name, value in fields.items() if value is not None}


def _cnames(value: str | None) -> str | None:
    if value is None:
        return None
    return ",".join(part.strip() for part in value.split(",") if part.strip())


def zone_changes(
    name: str | None,
    origin: str | None,
    alias: str | None,
    cnames: str | None,
    host_header: str | None,
    cache: str | None,
    expiry: str | None,
    querystring: str | None,
    cachecontrol: str | None,
    usestale: str | None,
    revalidate: str | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(zone fields, cache block) in 5centscdn names, from the options that were given."""
    fields: dict[str, Any] = _given(
        name=name, origin=origin, alias=alias, cnames=_cnames(cnames), hostHeader=host_header
    )
    cache_block = _given(
        cache=cache,
        expiry=expiry,
        querystring=querystring,
        cachecontrol=cachecontrol,
        usestale=usestale,
        revalidate=revalidate,
    )
    return fields, cache_block


def update_call(
    zone_id: int, fields: dict[str, Any], cache_block: dict[str, str]
) -> calls.Call[dict[str, Any]]:
    """Cache options alone change the cache block alone; else one update with a cache block."""
    if not fields:
        return calls.update_cache(zone_id, cache_block)
    if cache_block:
        fields = {**fields, "cache": cache_block}
    return calls.update_zone(zone_id, fields)


@zones_app.command("list")
def zones_list(
    ctx: typer.Context, api_url: ApiUrl = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """List the zones."""
    client = api_client(ctx, api_url, api_key)
    with handling_api_errors(client):
        zones = send(client, calls.list_zones(), as_json)
    if zones is not None:
        print_zones(zones)


@zones_app.command("show")
def zones_show(
    ctx: typer.Context,
    zone: ZoneRef,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Show one zone."""
    client = api_client(ctx, api_url, api_key)
    with handling_api_errors(client):
        found = send(client, calls.get_zone(find_zone_id(client, zone)), as_json)
    if found is not None:
        print_zone(found)


@zones_app.command("create")
def zones_create(
    ctx: typer.Context,
    name: Annotated[str, _name_option()],
    origin: Annotated[str, _origin_option()],
    alias: Alias = None,
    cnames: Cnames = None,
    host_header: HostHeader = None,
    cache: Cache = None,
    expiry: Expiry = None,
    querystring: Querystring = None,
    cachecontrol: Cachecontrol = None,
    usestale: Usestale = None,
    revalidate: Revalidate = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Create a zone."""
    fields, cache_block = zone_changes(
        name, origin, alias, cnames, host_header,
        cache, expiry, querystring, cachecontrol, usestale, revalidate,
    )  # fmt: skip
    if cache_block:
        fields["cache"] = cache_block
    client = api_client(ctx, api_url, api_key)
    with handling_api_errors(client):
        created = send(client, calls.create_zone(fields), as_json)
    if created is not None:
        out.print(Text(f"Zone created: id {created.get('id')} ({created.get('fqdn')})", "green"))
        print_zone(created)


@zones_app.command("update")
def zones_update(
    ctx: typer.Context,
    zone: ZoneRef,
    name: Annotated[str | None, _name_option()] = None,
    origin: Annotated[str | None, _origin_option()] = None,
    alias: Alias = None,
    cnames: Cnames = None,
    host_header: HostHeader = None,
    cache: Cache = None,
    expiry: Expiry = None,
    querystring: Querystring = None,
    cachecontrol: Cachecontrol = None,
    usestale: Usestale = None,
    revalidate: Revalidate = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Change a zone: only the options given change."""
    fields, cache_block = zone_changes(
        name, origin, alias, cnames, host_header,
        cache, expiry, querystring, cachecontrol, usestale, revalidate,
    )  # fmt: skip
    if not fields and not cache_block:
        ctx.fail("nothing to change: give at least one option (see --help)")
    client = api_client(ctx, api_url, api_key)
    with handling_api_errors(client):
        call = update_call(find_zone_id(client, zone), fields, cache_block)
        updated = send(client, call, as_json)
    if updated is not None:
        out.print(Text(f"Zone updated: id {updated.get('id')} ({updated.get('fqdn')})", "green"))
        print_zone(updated)


@zones_app.command("delete")
def zones_delete(
    ctx: typer.Context,
    zone: ZoneRef,
    yes: options.Yes = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Delete a zone and its cached objects (asks first unless --yes)."""
    if not yes:
        typer.confirm(f"Delete zone {zone} and everything it has cached?", abort=True, err=True)
    client = api_client(ctx, api_url, api_key)
    with handling_api_errors(client):
        answer = send(client, calls.delete_zone(find_zone_id(client, zone)), as_json)
    if answer is not None:
        out.print(Text(str(answer.get("message") or "Zone Deleted"), style="green"))
