"""`pullzone sign ZONE PATH`: print a signed URL of a zone (its `securetoken` block)."""

from __future__ import annotations

from typing import Annotated

import typer

from pullzone.cli.connection import Api, client_command, print_json
from pullzone.cli.output import fail
from pullzone.cli.zone_lookup import ZoneRef, find_zone_id


@client_command
def sign(
    api: Api,
    zone: ZoneRef,
    path: Annotated[str, typer.Argument(metavar="PATH", help="The path to sign (/videos/a.mp4).")],
    expires: Annotated[
        int | None,
        typer.Option(
            "--expires",
            metavar="S",
            min=1,
            show_default=False,
            help="The link's lifetime in seconds (default: the zone's securetoken timeout).",
        ),
    ] = None,
    ip: Annotated[
        str | None,
        typer.Option(
            "--ip",
            metavar="A",
            show_default=False,
            help="The client address the link is for (needed when the zone says keyip Y).",
        ),
    ] = None,
) -> None:
    """Print a signed URL of PATH on the zone's hostname, made with the zone's securetoken
    secret (read through the API): policy Q in the query, F and D in the path."""
    with api.connected() as client:
        try:
            url = client.sign_url(find_zone_id(client, zone), path, expires=expires, ip=ip)
        except ValueError as exc:
            fail(str(exc))
    if api.as_json:
        print_json({"result": "success", "url": url})
    else:
        typer.echo(url)
