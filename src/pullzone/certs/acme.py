"""Obtaining a certificate from an ACME CA (RFC 8555) with HTTP-01 challenges, through
certbot's `acme` library.

The library is synchronous (requests): each step runs in a thread (`asyncio.to_thread`)
and the caller, on the event loop, publishes the challenges between the two steps:

    pending = client.begin(names)     # account, order, the HTTP-01 challenges
    … every edge answers pending.challenges (the event log) …
    issued = client.finish(pending)   # answer, wait for validation, finalize, download

The account key is made once and kept in `DATA_DIR/acme/account.key` (mode 0600); each
order registers it again (newAccount answers the existing account for a known key, RFC
8555 §7.3.1), so a CA that forgot the account, or a changed `--acme-email`, needs nothing
from the operator. Each certificate gets a fresh ECDSA P-256 key.

Every failure is an `AcmeError` whose message is short, says what failed, and holds no
secret: it is what the zone's `ssl.warning` shows.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import requests
from acme import challenges, client, errors, messages
from acme import crypto_util as acme_crypto
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from josepy.jwk import JWKRSA

from pullzone import __version__
from pullzone.certs.model import Certificate

log = logging.getLogger("pullzone.acme")

ACCOUNT_KEY = "account.key"
ACCOUNT = "account.json"  # the account's URL at the CA, for the operator's eyes
NETWORK_TIMEOUT = 30  # seconds, each request to the CA
VALIDATION_WAIT = 120.0  # seconds for the CA to validate and issue, at most
WARNING_LIMIT = 300  # characters of a reason kept for `ssl.warning`


class AcmeError(Exception):
    """An order failed; the message is fit for `ssl.warning`."""


@dataclass(frozen=True, slots=True)
class Challenge:
    token: str
    key_authorization: str  # what GET /.well-known/acme-challenge/{token} answers


@dataclass(slots=True)
class Pending:
    """An order whose challenges are to be published, then answered (`finish`)."""

    names: tuple[str, ...]
    challenges: tuple[Challenge, ...]
    # The library's objects, for `finish`.
    acme: client.ClientV2
    order: messages.OrderResource
    bodies: tuple[messages.ChallengeBody, ...]
    key_pem: bytes


@dataclass(frozen=True, slots=True)
class Issued:
    crt: str  # the leaf, PEM
    cabundle: str  # the intermediates, PEM ("" when none)
    key: str  # the leaf's private key, PEM (PKCS#8)

    def certificate(self, cert_id: int, name: str, stamp: str) -> Certificate:
        """The account certificate record of what was issued (`cert_id` 0: a new one)."""
        leaf = x509.load_pem_x509_certificate(self.crt.encode())
        sans: list[str] = []
        try:
            extension = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            sans = [n.lower() for n in extension.value.get_values_for_type(x509.DNSName)]
        except x509.ExtensionNotFound:
            pass
        common = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        domain = str(common[0].value).lower() if common else (sans[0] if sans else "")
        return Certificate(
            id=cert_id,
            name=name,
            crt=self.crt,
            key=self.key,
            cabundle=self.cabundle,
            domain=domain,
            sans=tuple(sans),
            valid_from=leaf.not_valid_before_utc.timestamp(),
            expiry=leaf.not_valid_after_utc.timestamp(),
            source="acme",
            created_at=stamp,
            updated_at=stamp,
        )


def split_chain(fullchain: str) -> tuple[str, str]:
    """(leaf, intermediates) of a PEM chain as the CA sends it (leaf first)."""
    certs = x509.load_pem_x509_certificates(fullchain.encode())
    if not certs:
        raise AcmeError("the ACME CA sent no certificate")
    pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in certs]
    return pems[0], "".join(pems[1:])


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= WARNING_LIMIT else text[: WARNING_LIMIT - 1] + "…"


def _problem(error: messages.Error) -> str:
    """An ACME problem document (RFC 8555 §6.7) in a few words."""
    code = error.code or error.typ.rsplit(":", 1)[-1]
    detail = error.detail or error.title or ""
    return f"{code}: {detail}" if detail else str(code)


def _validation_failure(exc: errors.ValidationError) -> str:
    reasons = []
    for authz in exc.failed_authzrs:
        name = authz.body.identifier.value
        failed = [c.error for c in authz.body.challenges if c.error is not None]
        reasons.append(f"{name}: {_problem(failed[0])}" if failed else f"{name}: not validated")
    return "validation failed for " + "; ".join(reasons)


def _failure(exc: Exception) -> AcmeError:
    """What went wrong, in words fit for the zone's `ssl.warning`."""
    if isinstance(exc, AcmeError):
        return exc
    if isinstance(exc, errors.ValidationError):
        return AcmeError(_short(_validation_failure(exc)))
    if isinstance(exc, messages.Error):
        return AcmeError(_short(f"the ACME CA refused: {_problem(exc)}"))
    if isinstance(exc, errors.TimeoutError | errors.PollError):
        return AcmeError("the ACME CA did not finish validating in time")
    if isinstance(exc, requests.ConnectTimeout):
        return AcmeError("the ACME directory is unreachable (connection timed out)")
    if isinstance(exc, requests.Timeout):
        return AcmeError("the ACME CA did not answer in time")
    if isinstance(exc, requests.exceptions.SSLError):
        return AcmeError(
            "the ACME directory's TLS certificate is not trusted (see --acme-ca-bundle)"
        )
    if isinstance(exc, requests.ConnectionError):
        return AcmeError("the ACME directory is unreachable (connection failed)")
    if isinstance(exc, requests.RequestException | errors.ClientError | errors.Error):
        return AcmeError(_short(f"talking to the ACME CA failed: {type(exc).__name__}"))
    log.warning("ACME order failed unexpectedly", exc_info=exc)
    return AcmeError(_short(f"ordering failed: {type(exc).__name__}"))


def _write_private(path: Path, data: bytes) -> None:
    """A file only its owner may read, written whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class AcmeClient:
    def __init__(self, directory: str, state_dir: Path, email: str = "", ca_bundle: str = ""):
        self.directory = directory
        self.state_dir = state_dir
        self.email = email
        self.ca_bundle = ca_bundle
        self._account_key: JWKRSA | None = None

    # -- the account --

    def account_key(self) -> JWKRSA:
        """The account's key, made (RSA 2048, mode 0600) the first time."""
        if self._account_key is not None:
            return self._account_key
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.state_dir / ACCOUNT_KEY
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise AcmeError(f"{path} is not an RSA private key: remove it to make another")
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_private(path, pem)
        self._account_key = JWKRSA(key=key)
        return self._account_key

    def _client(self) -> client.ClientV2:
        # requests takes a CA bundle's path where the library says bool.
        verify = cast(bool, self.ca_bundle or True)
        net = client.ClientNetwork(
            self.account_key(),
            verify_ssl=verify,
            user_agent=f"pullzone/{__version__}",
            timeout=NETWORK_TIMEOUT,
        )
        directory = client.ClientV2.get_directory(self.directory, net)
        acme = client.ClientV2(directory, net)
        contact: dict[str, Any] = {"email": self.email} if self.email else {}
        registration = messages.NewRegistration.from_data(terms_of_service_agreed=True, **contact)
        try:
            account = acme.new_account(registration)
        except errors.ConflictError as known:  # this key's account exists: use it
            account = messages.RegistrationResource(
                body=messages.Registration(), uri=known.location
            )
            net.account = account
        self._remember(account.uri or "")
        return acme

    def _remember(self, uri: str) -> None:
        path = self.state_dir / ACCOUNT
        record = {"directory": self.directory, "account": uri, "email": self.email}
        try:
            if path.exists() and json.loads(path.read_text()) == record:
                return
        except (OSError, ValueError):
            pass
        _write_private(path, json.dumps(record, indent=1).encode())

    # -- an order, in two steps --

    def begin(self, names: tuple[str, ...]) -> Pending:
        """Register, order a certificate for `names` and return its HTTP-01 challenges
        (blocking: run it in a thread)."""
        try:
            acme = self._client()
            key = ec.generate_private_key(ec.SECP256R1())
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            csr = acme_crypto.make_csr(key_pem, list(names))
            order = acme.new_order(csr)
            account_key = self.account_key()
            found: list[Challenge] = []
            bodies: list[messages.ChallengeBody] = []
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # validated lately (authorization reuse)
                http01 = [
                    c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)
                ]
                if not http01:
                    raise AcmeError(
                        f"the ACME CA offers no HTTP-01 challenge for {authz.body.identifier.value}"
                    )
                body = http01[0]
                chall = cast(challenges.HTTP01, body.chall)
                found.append(Challenge(chall.encode("token"), chall.validation(account_key)))
                bodies.append(body)
        except Exception as exc:
            raise _failure(exc) from exc
        return Pending(names, tuple(found), acme, order, tuple(bodies), key_pem)

    def finish(self, pending: Pending) -> Issued:
        """Tell the CA the challenges are ready, wait for it to validate them, finalize
        and download the chain (blocking: run it in a thread)."""
        acme = pending.acme
        account_key = self.account_key()
        try:
            for body in pending.bodies:
                chall = cast(challenges.HTTP01, body.chall)
                acme.answer_challenge(body, chall.response(account_key))
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=VALIDATION_WAIT)
            order = acme.poll_and_finalize(pending.order, deadline)
            if not order.fullchain_pem:
                raise AcmeError("the ACME CA finalized the order without a certificate")
            crt, cabundle = split_chain(order.fullchain_pem)
        except Exception as exc:
            raise _failure(exc) from exc
        return Issued(crt, cabundle, pending.key_pem.decode())


def order_names(hostnames: list[str]) -> tuple[str, ...]:
    """The names of a zone a certificate is ordered for: its DNS names (fqdn first, then
    cnames), without IP literals (HTTP-01 validates DNS names) and duplicates."""
    names: list[str] = []
    for host in hostnames:
        name = host.lower().rstrip(".")
        if not name or name in names or _is_ip(name) or "*" in name:
            continue
        names.append(name)
    return tuple(names)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
