"""Certificates for tests: real ones from a trustme CA, and the ones trustme cannot make
(expired, not yet valid) built with cryptography and signed by a CA made here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pem:
    crt: str  # the leaf
    key: str
    cabundle: str  # the intermediates ("" when the leaf is issued by the root)
    root: str


def issued(*names: str, intermediate: bool = False) -> Pem:
    """A leaf for `names` from a fresh trustme CA (through an intermediate if asked)."""
    root = trustme.CA()
    issuer = root.create_child_ca() if intermediate else root
    leaf = issuer.issue_cert(*names)
    chain = [blob.bytes().decode() for blob in leaf.cert_chain_pems]
    return Pem(
        crt=chain[0],
        key=leaf.private_key_pem.bytes().decode(),
        cabundle="".join(chain[1:]),
        root=root.cert_pem.bytes().decode(),
    )


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def built(
    host: str,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    sans: tuple[str, ...] | None = None,
    common_name: bool = True,
) -> Pem:
    """A leaf signed by a CA made here, valid over [not_before, not_after] (default: a day
    ago to a year ahead)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test root"))
        .issuer_name(_name("test root"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=3650))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(host) if common_name else x509.Name([]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=365))
    )
    names = (host,) if sans is None else sans
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    leaf = builder.sign(ca_key, hashes.SHA256())
    return Pem(
        crt=leaf.public_bytes(serialization.Encoding.PEM).decode(),
        key=_pem_key(key),
        cabundle="",
        root=ca.public_bytes(serialization.Encoding.PEM).decode(),
    )


def other_key() -> str:
    return _pem_key(ec.generate_private_key(ec.SECP256R1()))
