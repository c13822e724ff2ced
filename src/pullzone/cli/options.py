"""Values on the command line: their types, and the parsers and checks that turn text into them.

A value that does not fit raises `typer.BadParameter`: a usage error, exit code 2.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer

from pullzone.config import split_host_port
from pullzone.zones.durations import parse_duration, parse_size
from pullzone.zones.files import looks_like_file


@dataclass(frozen=True, slots=True)
class Address:
    """A `HOST:PORT` listening address."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def address(default_port: int) -> Callable[[Any], Address]:
    """A parser of `HOST:PORT`, `[::1]:PORT`, `:PORT` or `HOST` (then on `default_port`)."""

    def parse(value: Any) -> Address:
        if isinstance(value, Address):
            return value
        try:
            host, port = split_host_port(str(value).strip(), default_port)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not HOST:PORT (for example 127.0.0.1:{default_port})"
            ) from None
        if not 0 < port < 65536:
            raise typer.BadParameter(f"port {port} is out of range (1-65535)")
        return Address(host, port)

    return parse


def size(value: Any) -> int:
    """A cache size in bytes from `500MiB`, `10GiB`, `1TB`, …; above 0."""
    if isinstance(value, int):
        return value
    try:
        nbytes = parse_size(str(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if nbytes <= 0:
        raise typer.BadParameter("the cache needs a size above 0 (for example 10GiB)")
    return nbytes


def seconds(value: Any) -> float:
    """A finite number of seconds above 0."""
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number of seconds") from None
    if not 0 < number < float("inf"):
        raise typer.BadParameter("give a number of seconds above 0")
    return number


def rate(value: Any) -> float:
    """Requests per second: a finite number >= 0 (0: no limit)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not a number of requests per second (0: no limit)"
            ) from None
    if not 0 <= number < float("inf"):
        raise typer.BadParameter("give a number of requests per second >= 0 (0: no limit)")
    return number


def edge_domain(value: Any) -> str:
    """A domain name, lower case and without the trailing dot."""
    domain = str(value).strip().lower().rstrip(".")
    if not domain or any(c in domain for c in "/: \t@") or ".." in domain:
        raise typer.BadParameter(f"{value!r} is not a domain name (for example cdn.example.com)")
    return domain


def duration(value: str | None) -> str | None:
    """A zone duration (`30m`, `4h`, `1d`, `1M`, …), checked and kept as given."""
    if value is None:
        return None
    try:
        parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def span(value: Any) -> float:
    """Seconds in a duration such as `7d`, `15m` or `30` (seconds); `0` is kept (none)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(parse_duration(str(value).strip()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def yes_no(value: str | None) -> str | None:
    """`Y` or `N`, from yes/no, true/false, on/off or 1/0 in any case."""
    if value is None:
        return None
    answer = value.strip().lower()
    if answer in ("y", "yes", "true", "1", "on"):
        return "Y"
    if answer in ("n", "no", "false", "0", "off"):
        return "N"
    raise typer.BadParameter(f"{value!r}: use Y or N")


def origin(value: str | None) -> str | None:
    """An http:// or https:// origin URL."""
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise typer.BadParameter(f"{value!r}: the origin is an http:// or https:// URL")
    return value


def purge_paths(values: list[str] | None) -> list[str] | None:
    """Paths that start with `/`, globs (`*.js`), or full http(s) URLs."""
    for value in values or ():
        if not looks_like_file(value):
            raise typer.BadParameter(
                f"{value!r}: a path starts with / or * (or give a full URL on one of the "
                "zone's hosts)"
            )
    return values


def has_glob(path: str) -> bool:
    """Whether a path (or URL) has a `*` before its query string: a purge's glob, which
    names no object (a `*` in the query string is the character itself)."""
    return "*" in path.partition("?")[0]


def prefetch_paths(values: list[str] | None) -> list[str] | None:
    """Paths that start with `/`, or full http(s) URLs, naming objects: no `*`."""
    for value in values or ():
        if has_glob(value):
            raise typer.BadParameter(f"{value!r} has a *: give the objects themselves")
        if not looks_like_file(value):
            raise typer.BadParameter(
                f"{value!r}: a path starts with / (or give a full URL on one of the zone's hosts)"
            )
    return values


class LogFormat(StrEnum):
    """How access log lines are written."""

    combined = "combined"
    json = "json"


class Role(StrEnum):
    """What a cluster node runs."""

    edge = "edge"
    api = "api"
    all = "all"
    shield = "shield"  # an edge that answers other edges only (docs/cluster.md)


Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

V = TypeVar("V")
R = TypeVar("R")


def with_options(
    spec: Callable[..., V], into: str
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """A decorator that gives commands a set of options defined once.

    The command takes `spec`'s parameters (typer options) besides its own, and is called
    with `spec(**their values)` as its parameter `into`: options several commands share
    are declared, and turned into what the commands use, in one place.
    """
    shared = list(inspect.signature(spec, eval_str=True).parameters.values())

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        own = inspect.signature(command, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name != into]
        names = {p.name for p in shared}
        if into not in own.parameters or names & {p.name for p in kept}:
            raise TypeError(f"{command.__name__} must take {into!r} and none of {names}")

        @functools.wraps(command)
        def run(**values: Any) -> R:
            given = {name: values.pop(name) for name in names}
            return command(**values, **{into: spec(**given)})

        merged = [p.replace(kind=p.KEYWORD_ONLY) for p in (*kept, *shared)]
        run.__signature__ = own.replace(parameters=merged)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in merged}
        return run

    return decorate
