"""How the client commands reach the API: its URL and key, the client, sending calls, API errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from pullzone.cli.output import fail
from pullzone.client import ApiError, Client
from pullzone.client import _requests as calls

API_PANEL = "API"


@dataclass
class Connection:
    """The global --api-url and --api-key (or their environment variables), kept in ctx.obj."""

    api_url: str | None = None
    api_key: str | None = None


ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        metavar="URL",
        show_default=False,
        help="API base URL (overrides the global --api-url and PULLZONE_API_URL).",
        rich_help_panel=API_PANEL,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        show_default=False,
        help="API key (overrides the global --api-key and PULLZONE_API_KEY).",
        rich_help_panel=API_PANEL,
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON answer instead of a summary.")
]


def api_client(ctx: typer.Context, api_url: str | None, api_key: str | None) -> Client:
    """A client for the command's --api-url/--api-key, else the global ones."""
    connection = ctx.obj if isinstance(ctx.obj, Connection) else Connection()
    url = api_url or connection.api_url
    key = api_key if api_key is not None else connection.api_key
    try:
        return Client(url, key)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--api-url' / PULLZONE_API_URL") from None


@contextmanager
def handling_api_errors(client: Client) -> Iterator[None]:
    """Closes the client; an ApiError becomes its message on stderr and exit code 1."""
    try:
        yield
    except ApiError as exc:
        message = exc.message if exc.status == 0 else f"{exc.message} (HTTP {exc.status})"
        if exc.status == 0:
            message += " (is `pullzone serve` running? set --api-url or PULLZONE_API_URL)"
        elif exc.status == 401 and not client.api_key:
            message += " (no API key given: set PULLZONE_API_KEY or pass --api-key)"
        fail(message)
    finally:
        client.close()


def send(client: Client, call: calls.Call[Any], as_json: bool) -> Any:
    """Send a call; with --json print the whole answer and return None, else its result."""
    answer = client.exchange(call)
    if as_json:
        typer.echo(json.dumps(answer.body, indent=2, ensure_ascii=False))
        return None
    return call.result(answer)
