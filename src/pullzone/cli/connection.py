"""How the client commands reach the API: its URL and key, the client, sending calls, API errors.

Every client command is declared with `@client_command`: it takes `--api-url`, `--api-key`
and `--json` besides its own options, and gets them as an `Api`, whose `run` sends a call
and prints either its result or (with --json) the API's whole answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from pullzone.cli.options import with_options
from pullzone.cli.output import fail
from pullzone.client import ApiError, Client
from pullzone.client import _requests as calls

T = TypeVar("T")
API_PANEL = "API"


@dataclass
class Connection:
    """The global API options (or their environment variables), kept in ctx.obj."""

    api_url: str | None = None
    api_key: str | None = None
    timeout: float = 30.0
    retries: int = 3


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


@dataclass
class Api:
    """A client command's way to the API: its --api-url/--api-key (else the global ones),
    and whether to print the API's JSON answers (--json)."""

    ctx: typer.Context
    api_url: str | None = None
    api_key: str | None = None
    as_json: bool = False

    def client(self) -> Client:
        """A client for the command's --api-url/--api-key, else the global ones."""
        connection = self.ctx.obj if isinstance(self.ctx.obj, Connection) else Connection()
        url = self.api_url or connection.api_url
        key = self.api_key if self.api_key is not None else connection.api_key
        try:
            return Client(url, key, timeout=connection.timeout, max_retries=connection.retries)
        except ValueError as exc:
            raise typer.BadParameter(
                str(exc), param_hint="'--api-url' / PULLZONE_API_URL"
            ) from None

    @contextmanager
    def connected(self) -> Iterator[Client]:
        """A client, closed at the end; an ApiError becomes its message on stderr and exit
        code 1."""
        client = self.client()
        try:
            yield client
        except ApiError as exc:
            fail(explain(exc, client))
        finally:
            client.close()

    def run(
        self,
        call: calls.Call[T] | Callable[[Client], calls.Call[T]],
        show: Callable[[T], None],
    ) -> None:
        """Send the call (or the one a function of the client makes, after looking zones
        up); with --json print the API's whole answer, else `show` its result."""
        with self.connected() as client:
            if not isinstance(call, calls.Call):
                call = call(client)
            answer = client.exchange(call)
            result = call.result(answer)
        if self.as_json:
            print_json(answer.body)
        else:
            show(result)


def explain(error: ApiError, client: Client) -> str:
    """What the person at the terminal should read about an API error."""
    message = error.message if error.status == 0 else f"{error.message} (HTTP {error.status})"
    if error.status == 0:
        message += " (is `pullzone serve` running? set --api-url or PULLZONE_API_URL)"
    elif error.status == 401 and not client.api_key:
        message += " (no API key given: set PULLZONE_API_KEY or pass --api-key)"
    elif error.attempts > 1:
        message += f" (after {error.attempts} attempts)"
    return message


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _api(
    ctx: typer.Context, api_url: ApiUrl = None, api_key: ApiKey = None, as_json: AsJson = False
) -> Api:
    return Api(ctx, api_url, api_key, as_json)


client_command = with_options(_api, "api")
"""Decorates a client command: it takes --api-url, --api-key and --json, as `api: Api`."""
