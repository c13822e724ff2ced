"""The `pullzone` command: run a node (`serve`, `demo`), drive the API (`zones`, `purge`,
`prefetch`, `keys`, `certs`), and look at a cluster (`cluster status`).

Exit codes: 0 success, 1 the API said no (its message on stderr), 2 usage error.

This module is the root: its global options, and where each command comes from.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pullzone import __version__
from pullzone.cli import options
from pullzone.cli.certs import certs_app
from pullzone.cli.cluster import cluster_app
from pullzone.cli.connection import API_PANEL, Connection
from pullzone.cli.keys import keys_app
from pullzone.cli.output import out
from pullzone.cli.prefetch import prefetch
from pullzone.cli.purge import purge
from pullzone.cli.serve import demo, serve
from pullzone.cli.sign import sign
from pullzone.cli.zones import zones_app
from pullzone.client import _requests as calls

app = typer.Typer(
    name="pullzone",
    help="A self-hosted CDN for HTTP pull zones, with a 5centscdn v2 compatible API.\n\n"
    "Exit codes: 0 success, 1 the API said no, 2 usage error.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command()(serve)
app.command()(demo)
app.add_typer(zones_app, name="zones")
app.command()(purge)
app.command()(prefetch)
app.command()(sign)
app.add_typer(keys_app, name="keys")
app.add_typer(certs_app, name="certs")
app.add_typer(cluster_app, name="cluster")


def _version(value: bool) -> None:
    if value:
        out.print(f"pullzone {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            envvar="PULLZONE_API_URL",
            metavar="URL",
            show_default=False,
            help=f"API base URL for client commands [default: {calls.DEFAULT_API_URL}]",
            rich_help_panel=API_PANEL,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="PULLZONE_API_KEY",
            metavar="KEY",
            show_default=False,
            help="API key for client commands (sent as X-API-Key)",
            rich_help_panel=API_PANEL,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            envvar="PULLZONE_API_TIMEOUT",
            metavar="SECONDS",
            parser=options.seconds,
            help="How long each API request may take.",
            rich_help_panel=API_PANEL,
        ),
    ] = 30.0,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            envvar="PULLZONE_API_RETRIES",
            metavar="N",
            min=0,
            help="Retries of a call the API rate-limited (429) or failed (5xx), or that "
            "found no API, waiting as Retry-After says (0: none).",
            rich_help_panel=API_PANEL,
        ),
    ] = 3,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keep the API connection options for the client commands."""
    ctx.obj = Connection(api_url, api_key, timeout, retries)


if __name__ == "__main__":
    app(prog_name="pullzone")
