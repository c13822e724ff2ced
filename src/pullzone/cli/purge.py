"""`pullzone purge`: mark stale, or remove, what a zone has cached.

`--from-file` purges a list of any length: it is split into batches the API accepts
(`purge_batches`: at most 10,000 files and 1 MiB a request), sent in order, with a progress
bar on a terminal. When a batch fails, the batches before it are applied and none after it
is sent; the message says which lines were purged and the `--skip N` that goes on from
there, so that a re-run neither purges a batch twice nor misses one.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from pullzone.cli import options
from pullzone.cli.connection import Api, client_command, explain, print_json
from pullzone.cli.output import err, fail, out, plural, print_purge, purge_kind, warn_pending
from pullzone.cli.zone_lookup import ZoneRef, find_zone_id
from pullzone.client import ApiError, Client, PurgeResult, purge_batches
from pullzone.client import _requests as calls
from pullzone.client._requests import Answer
from pullzone.zones.files import looks_like_file

STDIN = "-"


@dataclass(frozen=True, slots=True)
class Batch:
    """One request of a --from-file purge: its number (from 1), the file's lines it covers
    (`first_line` to `last_line`, counted from 1 like an editor does), and its paths."""

    number: int
    first_line: int
    last_line: int
    paths: list[str]


def listed_paths(text: str, skip: int = 0) -> list[tuple[int, str]]:
    """(line number, path) of each path in a --from-file text after its first `skip` lines:
    one a line, surrounding white space ignored, blank lines and `#` comment lines skipped.

    Raises ValueError naming the first line that is no path (nothing is sent then).
    """
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        path = line.strip()
        if number <= skip or not path or path.startswith("#"):
            continue
        if not looks_like_file(path):
            raise ValueError(
                f"line {number}: {path[:80]!r} is not a path starting with / or * nor a full "
                "http(s) URL (comment lines start with #)"
            )
        found.append((number, path))
    return found


def batches(paths: list[tuple[int, str]], **limits: int) -> list[Batch]:
    """The paths in batches the API accepts (see `purge_batches`), with their lines."""
    planned: list[Batch] = []
    start = 0
    for files in purge_batches((path for _, path in paths), **limits):
        end = start + len(files)
        planned.append(Batch(len(planned) + 1, paths[start][0], paths[end - 1][0], files))
        start = end
    return planned


def _dash(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}\u2013{last}"


def failure_message(planned: list[Batch], failed: int, error: str, source: str, skip: int) -> str:
    """What was applied, what failed, and how to go on, when batch number `failed` failed
    (the batches before it were applied) in a run that skipped `skip` lines."""
    done = planned[: failed - 1]
    count = len(planned)
    if done:
        applied = (
            f"batch{'es' * (len(done) > 1)} {_dash(1, len(done))} of {count} applied "
            f"(lines {_dash(skip + 1, done[-1].last_line)})"
        )
    else:
        applied = f"no batch of {count} applied"
    batch = planned[failed - 1]
    lines = _dash(batch.first_line, batch.last_line)
    resume = done[-1].last_line if done else skip
    again = f"--from-file {shlex.quote(source)}" + (f" --skip {resume}" if resume else "")
    if source == STDIN:
        again += " (with the same input)"
    return (
        f"{applied}; batch {failed} failed (lines {lines}): {error}; "
        f"re-run with {again} to continue"
    )


def _read(source: str) -> str:
    try:
        if source == STDIN:
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read() if stream is not None else sys.stdin.read().encode()
        else:
            data = Path(source).read_bytes()
        return data.decode("utf-8-sig")  # a byte order mark is not part of line 1
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {source}: {exc.strerror or exc}", param_hint="'--from-file'"
        ) from None
    except UnicodeDecodeError:
        raise typer.BadParameter(
            f"{source} is not UTF-8 text", param_hint="'--from-file'"
        ) from None


@contextmanager
def _progress(zone_id: int, files: int, requests: int) -> Iterator[Callable[[int, int], None]]:
    """`advance(paths, batch)`: a progress bar on stderr when it is a terminal, else nothing."""
    if not err.is_terminal:
        yield lambda paths, batch: None
        return
    columns = (
        TextColumn(f"purging zone {zone_id}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("paths, {task.fields[batch]}/" + f"{requests} requests"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("purge", total=files, batch=0)
        yield lambda paths, batch: bar.update(task, advance=paths, batch=batch)


def purge_from_file(api: Api, zone: str, source: str, skip: int, delete: bool) -> None:
    """Purge the paths listed in `source` (a file, or - for stdin), batch after batch."""
    try:
        planned = batches(listed_paths(_read(source), skip))
    except ValueError as exc:
        raise typer.BadParameter(
            f"{source}, {exc}; nothing was purged", param_hint="'--from-file'"
        ) from None
    if not planned:
        after = f" after its first {plural(skip, 'line')}" if skip else ""
        api.ctx.fail(f"nothing to purge: {source} lists no path{after}")
    with api.connected() as client:
        zone_id = find_zone_id(client, zone)
        sent, failure = _send(client, zone_id, planned, delete)
    if failure is not None:
        error = explain(failure, client)
        if failure.status == 0:
            error += "; it may or may not have been applied (purging it again is harmless)"
        fail(failure_message(planned, len(sent) + 1, error, source, skip))
    files = sum(len(b.paths) for b in planned)
    lines = (skip + 1, planned[-1].last_line)
    if api.as_json:
        print_json(
            {
                "result": "success",
                "message": "Zone Purged",
                "zone": zone_id,
                "files": files,
                "requests": len(planned),
                "lines": list(lines),
                "purges": [answer.body for answer, _ in sent],
            }
        )
        return
    results = [result for _, result in sent]
    line = Text.assemble(
        (results[-1].message, "green"),
        f": zone {zone_id}, {plural(files, 'path')} from "
        f"{'stdin' if source == STDIN else source} (lines {_dash(*lines)}) in "
        f"{plural(len(planned), 'request')}, {purge_kind(delete)}",
    )
    if all(r.purged is not None for r in results):
        line.append(f", {plural(sum(r.purged or 0 for r in results), 'object')} purged")
    out.print(line)
    warn_pending(edge for r in results for edge in r.pending)


def _send(
    client: Client, zone_id: int, planned: list[Batch], delete: bool
) -> tuple[list[tuple[Answer, PurgeResult]], ApiError | None]:
    """Send the batches in order until one fails: the answers (and results) of those
    applied, and the error of the one that failed (None: every batch was applied)."""
    sent: list[tuple[Answer, PurgeResult]] = []
    with _progress(zone_id, sum(len(b.paths) for b in planned), len(planned)) as advance:
        for batch in planned:
            call = calls.purge(zone_id, batch.paths, delete=delete)
            try:
                answer = client.exchange(call)
            except ApiError as exc:
                return sent, exc
            try:
                result = call.result(answer)
            except ApiError:  # applied all the same: the API said success
                result = PurgeResult(str(answer.body.get("message") or "Zone Purged"))
            sent.append((answer, result))
            advance(len(batch.paths), batch.number)
    return sent, None


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
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from-file",
            metavar="FILE",
            show_default=False,
            help="Purge the paths listed in FILE (- for stdin), one a line; blank lines and "
            "# comments are skipped. Any number: sent in batches the API accepts.",
        ),
    ] = None,
    skip: Annotated[
        int,
        typer.Option(
            "--skip",
            metavar="N",
            min=0,
            help="With --from-file: skip the file's first N lines (to go on where a "
            "failed run stopped, as its message says).",
        ),
    ] = 0,
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
