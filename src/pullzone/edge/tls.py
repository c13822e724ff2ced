"""HTTPS at the edge: which certificate a handshake gets, by SNI.

`Certificates` keeps one `ssl.SSLContext` per certificate (and ALPN offer) and a table
of the hostnames it serves: the hostnames of every zone whose `ssl` is enabled with a
`certid` the node holds, and that the certificate covers. The listener's own context
has no certificate at all; its `sni_callback` lets the worker catch up with the event
log, rebuilds the table when `EdgeState.tls_generation` moved, and switches the
handshake to the name's context: exact name first, then `*.rest` for one label. A name
without one, or no SNI, fails the handshake with `unrecognized_name`: never another
zone's certificate.

ALPN: OpenSSL chooses the protocol after the servername callback, from the context then
in use, so each zone's context offers `h2` only when its `ssl.http2` is on.

A private key is loaded from an anonymous memory file (memfd: nothing on disk), else
from a 0600 file under `DATA_DIR/run/tls` that is removed once loaded.

The listener that accepts, bounds the handshakes and hands each connection to HTTP/1.1
or h2 is edge/tls_listener.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from pullzone.certs.model import Certificate
from pullzone.edge import nghttp2
from pullzone.edge.state import EdgeState

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10  # seconds from the TCP connection to the end of the handshake
MAX_HANDSHAKES = 256  # connections still in their handshake, per worker
ALPN_HTTP1 = ("http/1.1",)
# HTTP/2 is libnghttp2's (edge/nghttp2.py): without the library, only HTTP/1.1 is offered.
ALPN_H2 = ("h2", "http/1.1") if nghttp2.available else ALPN_HTTP1


def _server_context(alpn: tuple[str, ...]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The server's cipher order (OpenSSL's default list: forward secrecy, AEAD first);
    # session tickets stay on (no OP_NO_TICKET): resumption without a server-side cache.
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(list(alpn))
    return context


def covers(names: tuple[str, ...], host: str) -> bool:
    """A certificate for `names` is valid for `host` (RFC 6125 §6.4.3: a wildcard stands
    for one whole label)."""
    if host in names:
        return True
    _, dot, rest = host.partition(".")
    return bool(dot) and f"*.{rest}" in names


def _load(context: ssl.SSLContext, cert: Certificate, spill_dir: Path) -> None:
    """The certificate chain and key into `context`, leaving no key on disk."""
    pem = (cert.chain_pem() + cert.key.rstrip("\n") + "\n").encode()
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        fd = memfd("pullzone-cert", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
            return
        except OSError:
            pass  # no /proc: the file below
        finally:
            os.close(fd)
    spill_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=spill_dir, suffix=".pem")  # mode 0600
    try:
        os.write(fd, pem)
        os.close(fd)
        context.load_cert_chain(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


class Certificates:
    """Which context a TLS handshake for a name gets (see the module's doc)."""

    def __init__(self, state: EdgeState, catch_up: Callable[[], None], spill_dir: Path) -> None:
        self.state = state
        self.catch_up = catch_up
        self.spill_dir = spill_dir
        self.context = _server_context(ALPN_H2)
        self.context.sni_callback = self.sni_callback
        self._built_for = -1
        self.names: dict[str, ssl.SSLContext] = {}
        # Contexts by certificate content and ALPN offer: a table rebuilt for another
        # zone's change keeps the contexts it had (ticket keys are the listener's: tickets.py).
        self._contexts: dict[tuple[str, tuple[str, ...]], ssl.SSLContext] = {}

    def sni_callback(
        self, conn: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext
    ) -> int | None:
        try:
            self.catch_up()
            if self.state.tls_generation != self._built_for:
                self.rebuild()
            context = self.lookup(name) if name else None
        except Exception:  # an exception here would abort the handshake without an alert
            log.exception("choosing a certificate for %r failed", name)
            context = None
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        conn.context = context
        return None

    def lookup(self, name: str) -> ssl.SSLContext | None:
        host = name.lower().removesuffix(".")
        context = self.names.get(host)
        if context is None:
            _, dot, rest = host.partition(".")
            if dot:
                context = self.names.get(f"*.{rest}")
        return context

    def rebuild(self) -> None:
        state = self.state
        generation = state.tls_generation
        names: dict[str, ssl.SSLContext] = {}
        contexts: dict[tuple[str, tuple[str, ...]], ssl.SSLContext] = {}
        for view in state.zones.values():
            zone = view.zone
            cert = state.certificates.get(zone.ssl.certid) if zone.ssl.enabled else None
            if cert is None:
                continue
            alpn = ALPN_H2 if zone.ssl.http2 else ALPN_HTTP1
            context = self._context(cert, alpn, contexts)
            if context is None:
                continue
            for host in zone.hostnames(state.edge_domain):
                if covers(cert.sans, host):
                    names[host] = context
        self.names = names
        self._contexts = contexts
        self._built_for = generation

    def _context(
        self,
        cert: Certificate,
        alpn: tuple[str, ...],
        contexts: dict[tuple[str, tuple[str, ...]], ssl.SSLContext],
    ) -> ssl.SSLContext | None:
        digest = hashlib.sha256((cert.crt + cert.key + cert.cabundle).encode()).hexdigest()
        key = (digest, alpn)
        context = contexts.get(key) or self._contexts.get(key)
        if context is None:
            context = _server_context(alpn)
            try:
                _load(context, cert, self.spill_dir)
            except (ssl.SSLError, OSError, ValueError) as exc:
                log.error("certificate %d (%s) does not load: %s", cert.id, cert.name, exc)
                return None
        contexts[key] = context
        return context
