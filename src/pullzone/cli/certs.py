"""`pullzone certs list|upload|show|delete`: account certificates through the API (a key
for the whole account)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from pullzone.cli import options
from pullzone.cli.connection import Api, client_command
from pullzone.cli.output import out, print_cert, print_certs
from pullzone.client import Certificate
from pullzone.client import _requests as calls

certs_app = typer.Typer(
    help="Upload, list, show and delete HTTPS certificates through the API.",
    no_args_is_help=True,
)


def _cert_id(value: str) -> str:
    try:
        calls.cert_path(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (see `pullzone certs list`)") from None
    return value


def pem_file(value: Path | None) -> str | None:
    """The text of a PEM file option (a usage error when it cannot be read)."""
    if value is None:
        return None
    try:
        return value.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{value}: cannot read it ({exc})") from None


def _pem_option(name: str, help: str) -> Any:
    return typer.Option(
        name, metavar="FILE", dir_okay=False, exists=True, show_default=False, help=help
    )


CertId = Annotated[
    str,
    typer.Argument(metavar="ID", callback=_cert_id, help="The certificate's id (certs list)."),
]
CrtFile = Annotated[Path, _pem_option("--crt", "The PEM certificate (a fullchain is split).")]
KeyFile = Annotated[Path, _pem_option("--key", "Its PEM private key (unencrypted).")]
BundleFile = Annotated[
    Path | None, _pem_option("--cabundle", "PEM intermediates, the leaf's issuer first.")
]


def _done(what: str) -> Callable[[Certificate], None]:
    def show(cert: Certificate) -> None:
        out.print(Text(f"Certificate {what}: id {cert.id} ({cert.domain})", "green"))
        print_cert(cert)

    return show


@certs_app.command("list")
@client_command
def certs_list(api: Api) -> None:
    """List the certificates, with the zones using each."""
    api.run(calls.list_certs(), print_certs)


@certs_app.command("upload")
@client_command
def certs_upload(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A label for the certificate.")],
    crt: CrtFile,
    key: KeyFile,
    api: Api,
    cabundle: BundleFile = None,
) -> None:
    """Upload a certificate and its private key.

    The API checks them (the key matches, valid now, the chain verifies); the key is never
    shown again.
    """
    crt_text, key_text = pem_file(crt), pem_file(key)
    assert crt_text is not None and key_text is not None
    call = calls.upload_cert(name, crt_text, key_text, pem_file(cabundle) or "")
    api.run(call, _done("uploaded"))


@certs_app.command("show")
@client_command
def certs_show(cert_id: CertId, api: Api) -> None:
    """Show one certificate (never its key)."""
    api.run(calls.get_cert(cert_id), print_cert)


@certs_app.command("delete")
@client_command
def certs_delete(cert_id: CertId, api: Api, yes: options.Yes = False) -> None:
    """Delete a certificate no zone uses (asks first unless --yes)."""
    if not yes:
        typer.confirm(f"Delete certificate {cert_id}?", abort=True, err=True)
    api.run(
        calls.delete_cert(cert_id),
        lambda _: out.print(Text(f"Certificate Deleted: {cert_id}", style="green")),
    )
