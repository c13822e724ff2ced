"""`--from-file`: a list of paths of any length, sent in batches, for `purge` and `prefetch`.

The list is read and checked whole before anything is sent, then split into batches the
API accepts (`purge_batches`) and sent in order, with a progress bar on a terminal. When a
batch fails, the batches before it are applied and none after it is sent; the message says
which lines were applied and the `--skip N` that goes on from there, so that a re-run
neither sends a batch twice nor misses one.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pullzone.cli.connection import Api, explain
from pullzone.cli.options import has_glob
from pullzone.cli.output import err, fail, plural
from pullzone.cli.zone_lookup import find_zone_id
from pullzone.client import MAX_PURGE_FILES, ApiError, Client, purge_batches
from pullzone.client._requests import Answer, Call
from pullzone.zones.files import looks_like_file

STDIN = "-"
R = TypeVar("R")

FromFile = Annotated[
    str | None,
    typer.Option(
        "--from-file",
        metavar="FILE",
        show_default=False,
        help="The paths listed in FILE (- for stdin), one a line; blank lines and # comments "
        "are skipped. Any number: sent in batches the API accepts.",
    ),
]
Skip = Annotated[
    int,
    typer.Option(
        "--skip",
        metavar="N",
        min=0,
        help="With --from-file: skip the file's first N lines (to go on where a failed run "
        "stopped, as its message says).",
    ),
]


@dataclass(frozen=True, slots=True)
class Batch:
    """One request of a --from-file run: its number (from 1), the file's lines it covers
    (`first_line` to `last_line`, counted from 1 like an editor does), and its paths."""

    number: int
    first_line: int
    last_line: int
    paths: list[str]


def listed_paths(text: str, skip: int = 0, *, globs: bool = True) -> list[tuple[int, str]]:
    """(line number, path) of each path in a --from-file text after its first `skip` lines:
    one a line, surrounding white space ignored, blank lines and `#` comment lines skipped.
    `globs`: a path may have a `*` (a purge's), else such a line is refused (a prefetch's).

    Raises ValueError naming the first line that is no path (nothing is sent then).
    """
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        path = line.strip()
        if number <= skip or not path or path.startswith("#"):
            continue
        if not globs and has_glob(path):
            raise ValueError(f"line {number}: {path[:80]!r} has a *: list the objects themselves")
        if not looks_like_file(path):
            raise ValueError(
                f"line {number}: {path[:80]!r} is not a path starting with /"
                f"{' or *' * globs} nor a full http(s) URL (comment lines start with #)"
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


def dash(first: int, last: int) -> str:
    """A range of lines as printed: `3`, or `1` to `7` with an en dash between."""
    return str(first) if first == last else f"{first}\u2013{last}"


def failure_message(planned: list[Batch], failed: int, error: str, source: str, skip: int) -> str:
    """What was applied, what failed, and how to go on, when batch number `failed` failed
    (the batches before it were applied) in a run that skipped `skip` lines."""
    done = planned[: failed - 1]
    count = len(planned)
    if done:
        applied = (
            f"batch{'es' * (len(done) > 1)} {dash(1, len(done))} of {count} applied "
            f"(lines {dash(skip + 1, done[-1].last_line)})"
        )
    else:
        applied = f"no batch of {count} applied"
    batch = planned[failed - 1]
    lines = dash(batch.first_line, batch.last_line)
    resume = done[-1].last_line if done else skip
    again = f"--from-file {shlex.quote(source)}" + (f" --skip {resume}" if resume else "")
    if source == STDIN:
        again += " (with the same input)"
    return (
        f"{applied}; batch {failed} failed (lines {lines}): {error}; "
        f"re-run with {again} to continue"
    )


def read(source: str) -> str:
    """The text of a --from-file FILE (`-`: stdin); a usage error when it cannot be read."""
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


@dataclass(frozen=True, slots=True)
class Verb:
    """What a --from-file run does, as its messages say it: `purge`, `purging`, `purged`."""

    name: str
    doing: str
    done: str


@dataclass(frozen=True, slots=True)
class Run(Generic[R]):
    """A --from-file run that was applied whole: the zone, the batches, each request's
    answer and result, and the lines it covered."""

    zone_id: int
    planned: list[Batch]
    sent: list[tuple[Answer, R]]
    lines: tuple[int, int]

    @property
    def files(self) -> int:
        return sum(len(b.paths) for b in self.planned)

    def results(self) -> list[R]:
        return [result for _, result in self.sent]

    def summary(self, source: str) -> str:
        """`2500 paths from F (lines 1-2500) in 3 requests` (the range with an en dash)."""
        return (
            f"{plural(self.files, 'path')} from {'stdin' if source == STDIN else source} "
            f"(lines {dash(*self.lines)}) in {plural(len(self.planned), 'request')}"
        )

    def report(self, message: str, answers: str) -> dict[str, Any]:
        """What --json prints: the run, and each request's answer as a list `answers`."""
        return {
            "result": "success",
            "message": message,
            "zone": self.zone_id,
            "files": self.files,
            "requests": len(self.planned),
            "lines": list(self.lines),
            answers: [answer.body for answer, _ in self.sent],
        }


def send_listed(
    api: Api,
    zone: str,
    source: str,
    skip: int,
    verb: Verb,
    call: Callable[[int, list[str]], Call[R]],
    unread: Callable[[Answer], R],
    *,
    globs: bool = True,
    max_files: int = MAX_PURGE_FILES,
) -> Run[R]:
    """Send the paths listed in `source` (a file, or - for stdin), batch after batch: each
    batch is `call(zone_id, paths)`; `unread(answer)` is the result of a success answer
    that could not be read (applied all the same). A failed batch ends the command with
    exit code 1 and says how to go on."""
    try:
        planned = batches(listed_paths(read(source), skip, globs=globs), max_files=max_files)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{source}, {exc}; nothing was {verb.done}", param_hint="'--from-file'"
        ) from None
    if not planned:
        after = f" after its first {plural(skip, 'line')}" if skip else ""
        api.ctx.fail(f"nothing to {verb.name}: {source} lists no path{after}")
    with api.connected() as client:
        zone_id = find_zone_id(client, zone)
        sent, failure = _send(client, zone_id, planned, verb, call, unread)
    if failure is not None:
        error = explain(failure, client)
        if failure.status == 0:
            error += f"; it may or may not have been applied ({verb.doing} it again is harmless)"
        fail(failure_message(planned, len(sent) + 1, error, source, skip))
    return Run(zone_id, planned, sent, (skip + 1, planned[-1].last_line))


@contextmanager
def _progress(
    verb: Verb, zone_id: int, files: int, requests: int
) -> Iterator[Callable[[int, int], None]]:
    """`advance(paths, batch)`: a progress bar on stderr when it is a terminal, else nothing."""
    if not err.is_terminal:
        yield lambda paths, batch: None
        return
    columns = (
        TextColumn(f"{verb.doing} zone {zone_id}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("paths, {task.fields[batch]}/" + f"{requests} requests"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err) as bar:
        task = bar.add_task(verb.name, total=files, batch=0)
        yield lambda paths, batch: bar.update(task, advance=paths, batch=batch)


def _send(
    client: Client,
    zone_id: int,
    planned: list[Batch],
    verb: Verb,
    call: Callable[[int, list[str]], Call[R]],
    unread: Callable[[Answer], R],
) -> tuple[list[tuple[Answer, R]], ApiError | None]:
    """Send the batches in order until one fails: the answers (and results) of those
    applied, and the error of the one that failed (None: every batch was applied)."""
    sent: list[tuple[Answer, R]] = []
    files = sum(len(b.paths) for b in planned)
    with _progress(verb, zone_id, files, len(planned)) as advance:
        for batch in planned:
            request = call(zone_id, batch.paths)
            try:
                answer = client.exchange(request)
            except ApiError as exc:
                return sent, exc
            try:
                result = request.result(answer)
            except ApiError:  # applied all the same: the API said success
                result = unread(answer)
            sent.append((answer, result))
            advance(len(batch.paths), batch.number)
    return sent, None
