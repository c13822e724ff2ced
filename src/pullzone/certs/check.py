"""An uploaded certificate, checked before anything is stored: the PEM parses, the key is
the certificate's, it is valid now, and the chain given with it verifies.

Every problem raises `Refused(Reason.INVALID, "<field>: <what is wrong>")`. Messages name
the field and never echo a private key (nor any other PEM body). The leaf's names follow
RFC 5280 §4.2.1.6: its DNS subjectAltNames; `domain` is the subject's common name, else
the first DNS name.

The chain is checked pairwise (`verify_directly_issued_by`) rather than with
cryptography's `x509.verification` policy: that needs a trust anchor and applies the Web
PKI profile, while a bundle may end at an intermediate whose root the client has.

A `crt` that holds more than one certificate (a "fullchain" file) is read as the leaf
followed by its intermediates, which go in front of `cabundle`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from pullzone.certs.model import Certificate
from pullzone.refusal import Reason, Refused

MAX_PEM = 64 * 1024  # per field: a leaf with a long chain is a few KiB
MAX_CHAIN = 10  # certificates in crt and cabundle together
MAX_NAME = 255

_PEM_CERT = "-----BEGIN CERTIFICATE-----"
_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def _refuse(message: str) -> Refused:
    return Refused(Reason.INVALID, message)


@dataclass(frozen=True, slots=True)
class Checked:
    """What a checked upload is made of, in canonical PEM."""

    crt: str
    key: str
    cabundle: str
    domain: str
    sans: tuple[str, ...]
    valid_from: float
    expiry: float

    def certificate(self, cert_id: int, name: str, stamp: str) -> Certificate:
        return Certificate(
            id=cert_id,
            name=name,
            crt=self.crt,
            key=self.key,
            cabundle=self.cabundle,
            domain=self.domain,
            sans=self.sans,
            valid_from=self.valid_from,
            expiry=self.expiry,
            created_at=stamp,
            updated_at=stamp,
        )


def check_size(field: str, text: str) -> None:
    if len(text) > MAX_PEM:
        raise _refuse(
            f"{field}: {len(text)} characters is more than the {MAX_PEM // 1024} KiB a PEM "
            "field may hold; send the certificate, its key and its intermediates only"
        )


def check_name(name: str) -> str:
    text = name.strip()
    if len(text) > MAX_NAME:
        raise _refuse(f"name: must be at most {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise _refuse("name: must not contain control characters")
    return text


def _certificates(field: str, text: str, *, required: bool) -> list[x509.Certificate]:
    check_size(field, text)
    if not text.strip():
        if required:
            raise _refuse(f"{field}: is required (a PEM certificate, -----BEGIN CERTIFICATE-----)")
        return []
    if _PEM_CERT not in text:
        raise _refuse(f"{field} is not a PEM certificate: expected -----BEGIN CERTIFICATE-----")
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise _refuse(f"{field} is not a PEM certificate: its PEM block does not parse") from None
    if len(certs) > MAX_CHAIN:
        raise _refuse(f"{field}: at most {MAX_CHAIN} certificates, not {len(certs)}")
    return certs


def _private_key(text: str) -> PrivateKey:
    check_size("key", text)
    if not text.strip():
        raise _refuse("key: is required (the certificate's PEM private key)")
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except TypeError:  # it is encrypted
        raise _refuse(
            "key: is encrypted; upload it without a passphrase (openssl pkey -in KEY -out PLAIN)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise _refuse(
            "key is not a PEM private key: expected -----BEGIN PRIVATE KEY----- "
            "(or RSA/EC PRIVATE KEY)"
        ) from None
    if not isinstance(key, _KEY_TYPES):
        raise _refuse("key: only RSA, ECDSA, Ed25519 and Ed448 keys are supported")
    return key


def _spki(public_key: object) -> bytes:
    assert hasattr(public_key, "public_bytes")
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "an empty subject"


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_times(field: str, cert: x509.Certificate, now: datetime) -> None:
    if cert.not_valid_after_utc < now:
        raise _refuse(
            f"{field}: the certificate ({_subject(cert)}) expired on "
            f"{_day(cert.not_valid_after_utc)}; upload a renewed one"
        )
    if cert.not_valid_before_utc > now:
        raise _refuse(
            f"{field}: the certificate ({_subject(cert)}) is not valid yet: its validity "
            f"starts {_day(cert.not_valid_before_utc)}"
        )


def _check_chain(leaf: x509.Certificate, chain: list[x509.Certificate], now: datetime) -> None:
    """Each certificate is issued by the next (RFC 5280 §6.1: name chaining and signature),
    from the leaf up to the bundle's last; each intermediate is valid now."""
    child, child_what = leaf, "crt"
    for position, issuer in enumerate(chain, 1):
        what = f"cabundle certificate {position} ({_subject(issuer)})"
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise _refuse(
                f"cabundle: the chain does not verify: {child_what} is not issued by {what}; "
                "list the intermediates in order, the leaf's issuer first"
            ) from None
        _check_times(f"cabundle: certificate {position}", issuer, now)
        child, child_what = issuer, what


def _names(leaf: x509.Certificate) -> tuple[str, tuple[str, ...]]:
    try:
        extension = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = extension.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    except ValueError:
        raise _refuse("crt: its subjectAltName extension does not parse") from None
    sans = tuple(dict.fromkeys(name.strip().lower() for name in dns if name.strip()))
    common = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    domain = str(common[0]).strip().lower() if common and str(common[0]).strip() else ""
    if not domain and sans:
        domain = sans[0]
    if not domain:
        raise _refuse("crt: names no host: it has neither a subject common name nor a DNS name")
    return domain, sans


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def check_upload(crt: str, key: str, cabundle: str = "", *, now: float | None = None) -> Checked:
    """The upload, checked (see the module); raises Refused naming the field at fault."""
    leaf, *extra = _certificates("crt", crt, required=True)
    chain = extra + _certificates("cabundle", cabundle, required=False)
    if len(chain) + 1 > MAX_CHAIN:
        raise _refuse(f"cabundle: at most {MAX_CHAIN} certificates in all, not {len(chain) + 1}")
    private_key = _private_key(key)
    if _spki(private_key.public_key()) != _spki(leaf.public_key()):
        raise _refuse("key: does not match the certificate (crt): upload the key it was issued for")
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    _check_times("crt", leaf, moment)
    _check_chain(leaf, chain, moment)
    domain, sans = _names(leaf)
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return Checked(
        crt=_pem(leaf),
        key=key_pem,
        cabundle="".join(_pem(c) for c in chain),
        domain=domain,
        sans=sans,
        valid_from=leaf.not_valid_before_utc.timestamp(),
        expiry=leaf.not_valid_after_utc.timestamp(),
    )
