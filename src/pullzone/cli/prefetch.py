"""`pullzone prefetch`: store objects of a zone on every edge before visitors ask for them.

`--from-file` prefetches a list of any length as `purge --from-file` purges one
(`path_lists`): in batches of at most 1,000 files, sent in order, with a progress bar on a
terminal; a failed batch says which lines were prefetched and the `--skip N` that goes on.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from pullzone.cli import options
from pullzone.cli.connection import Api, client_command, print_json
from pullzone.cli.output import out, plural, warn_pending
from pullzone.cli.path_lists import FromFile, Skip, Verb, send_listed
from pullzone.cli.zone_lookup import ZoneRef, find_zone_id
from pullzone.client import Client, PrefetchResult
from pullzone.client import _requests as calls
from pullzone.client._requests import Answer
from pullzone.limits import MAX_PREFETCH_FILES

PREFETCH = Verb("prefetch", "prefetching", "prefetched")
PENDING = "they may not hold the objects yet"


def prefetch_from_file(api: Api, zone: str, source: str, skip: int) -> None:
    """Prefetch the paths listed in `source` (a file, or - for stdin), batch after batch."""
    run = send_listed(
        api,
        zone,
        source,
        skip,
        PREFETCH,
        calls.prefetch,
        _unread,
        globs=False,
        max_files=MAX_PREFETCH_FILES,
    )
    if api.as_json:
        print_json(run.report("Zone Prefetched", "prefetches"))
        return
    results = run.results()
    out.print(
        Text.assemble(
            (results[-1].message, "green"), f": zone {run.zone_id}, {run.summary(source)}"
        )
    )
    warn_pending((edge for r in results for edge in r.pending), PENDING)


def _unread(answer: Answer) -> PrefetchResult:
    return PrefetchResult(str(answer.body.get("message") or "Zone Prefetched"))


def print_prefetch(result: PrefetchResult, zone_id: int, paths: list[str]) -> None:
    """What was prefetched, and on stderr the edges that have not confirmed it yet."""
    out.print(
        Text.assemble((result.message, "green"), f": zone {zone_id}, {plural(len(paths), 'path')}")
    )
    warn_pending(result.pending, PENDING)


@client_command
def prefetch(
    api: Api,
    zone: ZoneRef,
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PATH",
            show_default=False,
            callback=options.prefetch_paths,
            help="Paths (/img/logo.png, /page?x=1) or full URLs of the objects; no *.",
        ),
    ] = None,
    from_file: FromFile = None,
    skip: Skip = 0,
) -> None:
    """Store objects of a zone on every edge before visitors ask for them: some paths, or a
    list of paths (--from-file). Each edge fetches them through its own cache."""
    fail_usage = api.ctx.fail
    if from_file is not None:
        if paths:
            fail_usage("--from-file prefetches the paths it lists: give no PATH")
        prefetch_from_file(api, zone, from_file, skip)
        return
    if skip:
        fail_usage("--skip goes with --from-file")
    if not paths:
        fail_usage("nothing to prefetch: give paths, or --from-file FILE")
    zone_id = 0

    def make(client: Client) -> calls.Call[Any]:
        nonlocal zone_id
        zone_id = find_zone_id(client, zone)
        return calls.prefetch(zone_id, paths or [])

    api.run(make, lambda result: print_prefetch(result, zone_id, paths or []))
