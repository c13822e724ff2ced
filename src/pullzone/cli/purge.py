"""`pullzone purge`: mark stale, or remove, what a zone has cached.

`--from-file` purges a list of any length (`path_lists`): it is split into batches the API
accepts (`purge_batches`: at most 10,000 files and 1 MiB a request), sent in order, with a
progress bar on a terminal; a failed batch says which lines were purged and the `--skip N`
that goes on from there.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from pullzone.cli import options
from pullzone.cli.connection import Api, client_command, print_json
from pullzone.cli.output import out, plural, print_purge, purge_kind, warn_pending
from pullzone.cli.path_lists import FromFile, Skip, Verb, send_listed
from pullzone.cli.zone_lookup import ZoneRef, find_zone_id
from pullzone.client import Client, PurgeResult
from pullzone.client import _requests as calls
from pullzone.client._requests import Answer

PURGE = Verb("purge", "purging", "purged")


def purge_from_file(api: Api, zone: str, source: str, skip: int, delete: bool) -> None:
    """Purge the paths listed in `source` (a file, or - for stdin), batch after batch."""
    run = send_listed(
        api,
        zone,
        source,
        skip,
        PURGE,
        lambda zone_id, paths: calls.purge(zone_id, paths, delete=delete),
        _unread,
    )
    if api.as_json:
        print_json(run.report("Zone Purged", "purges"))
        return
    results = run.results()
    line = Text.assemble(
        (results[-1].message, "green"),
        f": zone {run.zone_id}, {run.summary(source)}, {purge_kind(delete)}",
    )
    if all(r.purged is not None for r in results):
        line.append(f", {plural(sum(r.purged or 0 for r in results), 'object')} purged")
    out.print(line)
    warn_pending(edge for r in results for edge in r.pending)


def _unread(answer: Answer) -> PurgeResult:
    return PurgeResult(str(answer.body.get("message") or "Zone Purged"))


@client_command
def purge(
    api: Api,
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
    from_file: FromFile = None,
    skip: Skip = 0,
    delete: Annotated[
        bool,
        typer.Option(
            "--delete",
            help="Hard purge: remove the objects. Default: soft purge, they become stale "
            "and are revalidated with the origin on the next request.",
        ),
    ] = False,
    yes: options.Yes = False,
) -> None:
    """Purge cached objects of a zone: some paths, a list of paths (--from-file), some tags,
    or (--all) everything."""
    fail_usage = api.ctx.fail
    if from_file is not None:
        if paths or tags or whole_zone:
            fail_usage("--from-file purges the paths it lists: give no PATH, --tag or --all")
        purge_from_file(api, zone, from_file, skip, delete)
        return
    if skip:
        fail_usage("--skip goes with --from-file")
    if whole_zone and (paths or tags):
        fail_usage("--all purges the whole zone: give it without paths or tags")
    if not whole_zone and not paths and not tags:
        fail_usage(
            "nothing to purge: give paths, --from-file FILE, --tag TAG, or --all for the whole zone"
        )
    if whole_zone and not yes:
        what = "Delete" if delete else "Purge (mark stale)"
        typer.confirm(f"{what} every cached object of zone {zone}?", abort=True, err=True)
    zone_id = 0

    def make(client: Client) -> calls.Call[Any]:
        nonlocal zone_id
        zone_id = find_zone_id(client, zone)
        return calls.purge(zone_id, paths or None, tags=tags or None, delete=delete)

    api.run(make, lambda result: print_purge(result, zone_id, paths or [], tags or [], delete))
