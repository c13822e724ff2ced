"""`pullzone keys create|list|revoke`: API keys through the API (the admin key only)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from pullzone.cli import options
from pullzone.cli.connection import Api, client_command
from pullzone.cli.output import out, print_keys, print_new_key
from pullzone.cli.zone_lookup import find_zone_ids
from pullzone.client import NewKey
from pullzone.client import _requests as calls

keys_app = typer.Typer(
    help="Create, list and revoke API keys through the API (needs the admin key).",
    no_args_is_help=True,
)


def _name(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise typer.BadParameter("give the key a name, for example --name deploy-bot")
    return value


def _zone_refs(values: list[str] | None) -> list[str] | None:
    for value in values or ():
        if not value.strip():
            raise typer.BadParameter("a zone id, alias, hostname or name, not an empty string")
    return values


def _key_id(value: str) -> str:
    try:
        calls.key_path(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (see `pullzone keys list`)") from None
    return value


def key_request(name: str, zone_ids: list[int] | None, purge_only: bool) -> calls.Call[NewKey]:
    """What `keys create` sends: no --zone at all means every zone."""
    return calls.create_key(name, zone_ids or None, purge_only)


@keys_app.command("create")
@client_command
def keys_create(
    api: Api,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            metavar="NAME",
            show_default=False,
            callback=_name,
            help="A label for the key, shown by `pullzone keys list`.",
        ),
    ],
    zones: Annotated[
        list[str] | None,
        typer.Option(
            "--zone",
            metavar="ZONE",
            show_default=False,
            callback=_zone_refs,
            help="Limit the key to this zone (id, alias, hostname or name); repeatable. "
            "Default: every zone.",
        ),
    ] = None,
    purge_only: Annotated[
        bool,
        typer.Option(
            "--purge-only", help="The key may read and purge its zones, never change them."
        ),
    ] = False,
) -> None:
    """Create an API key and print its secret (the only time it is shown).

    The secret goes alone to stdout, everything else to stderr:
    KEY=$(pullzone keys create --name ci) captures exactly the key.
    """
    api.run(
        lambda client: key_request(
            name, find_zone_ids(client, zones) if zones else None, purge_only
        ),
        print_new_key,
    )


@keys_app.command("list")
@client_command
def keys_list(api: Api) -> None:
    """List the API keys (revoked ones too); never their secrets."""
    api.run(calls.list_keys(), print_keys)


@keys_app.command("revoke")
@client_command
def keys_revoke(
    api: Api,
    key_id: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            callback=_key_id,
            help="The key's id, as `pullzone keys list` shows it (not the secret).",
        ),
    ],
    yes: options.Yes = False,
) -> None:
    """Revoke an API key: its next call is refused (asks first unless --yes)."""
    if not yes:
        typer.confirm(
            f"Revoke API key {key_id}? Every call made with it is refused from then on.",
            abort=True,
            err=True,
        )
    api.run(
        calls.revoke_key(key_id),
        lambda _: out.print(Text(f"Key Revoked: {key_id}", style="green")),
    )
