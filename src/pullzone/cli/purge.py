"""`pullzone purge`: mark stale, or remove, what a zone has cached."""

from __future__ import annotations

from typing import Annotated

import typer

from pullzone.cli import options
from pullzone.cli.connection import ApiKey, ApiUrl, AsJson, api_client, handling_api_errors, send
from pullzone.cli.output import print_purge
from pullzone.cli.zone_lookup import ZoneRef, find_zone_id
from pullzone.client import _requests as calls


def purge(
    ctx: typer.Context,
    zone: ZoneRef,
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PATH",
            show_default=False,
            callback=options.purge_paths,
            help="Paths (/img/logo.png, /img/*, /page?x=1) or full URLs to purge.",
        ),
    ] = None,
    tags: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            metavar="TAG",
            show_default=False,
            help="Purge what the origin tagged so (Surrogate-Key / Cache-Tag); repeatable.",
        ),
    ] = None,
    whole_zone: Annotated[
        bool, typer.Option("--all", help="Purge the whole zone (asks first unless --yes).")
    ] = False,
    delete: Annotated[
        bool,
        typer.Option(
            "--delete",
            help="Hard purge: remove the objects. Default: soft purge, they become stale "
            "and are revalidated with the origin on the next request.",
        ),
    ] = False,
    yes: options.Yes = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Purge cached objects of a zone: some paths, some tags, or (--all) everything."""
    if whole_zone and (paths or tags):
        ctx.fail("--all purges the whole zone: give it without paths or tags")
    if not whole_zone and not paths and not tags:
        ctx.fail("nothing to purge: give paths, --tag TAG, or --all for the whole zone")
    if whole_zone and not yes:
        what = "Delete" if delete else "Purge (mark stale)"
        typer.confirm(f"{what} every cached object of zone {zone}?", abort=True, err=True)
    client = api_client(ctx, api_url, api_key)
    with handling_api_errors(client):
        zone_id = find_zone_id(client, zone)
        answer = send(
            client, calls.purge(zone_id, paths or None, tags=tags or None, delete=delete), as_json
        )
    if answer is not None:
        print_purge(answer, zone_id, paths or [], tags or [], delete)
