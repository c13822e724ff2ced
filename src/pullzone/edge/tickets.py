"""TLS session ticket keys shared by a node's edge workers.

OpenSSL encrypts session tickets (RFC 8446 §4.6.1, RFC 5077) with keys each SSL_CTX
draws at random: with workers started by "spawn", each worker had its own, and a client
resuming on another worker (SO_REUSEPORT hands it any) got a full handshake. So the
supervisor writes the node's key to `DATA_DIR/run/tls-ticket.key` (mode 0600, 80 random
bytes: a 16-byte key name, a 32-byte HMAC-SHA256 key, a 32-byte AES-256 key) before it
starts the workers, and replaces it every ROTATE_EVERY; each worker installs it on its
TLS listener's context (the one whose keys OpenSSL uses for tickets, whichever
certificate's context the SNI callback switched to) and again whenever the file changes.
OpenSSL holds one key this way: tickets issued under the previous one get a full
handshake (and a new ticket) once after a rotation.

Python does not expose a context's SSL_CTX*. It is the first field after PyObject_HEAD
of CPython's PySSLContext, read with ctypes; it is used only if it is verified:
SSL_CTX_get_options on it must give `context.options`, before and after one option is
flipped through Python. Otherwise (another Python, a libssl whose symbols cannot be
reached, a different OpenSSL than `ssl` was built against) nothing is installed and
each worker keeps its own keys, as before, with a warning.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import ssl
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

KEY_SIZE = 80  # OpenSSL ≥ 1.1: name (16) + HMAC key (32) + AES key (32)
ROTATE_EVERY = 24 * 3600.0  # seconds
SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59
FILE_NAME = "tls-ticket.key"


def key_path(run_dir: Path) -> Path:
    return run_dir / FILE_NAME


def write_key(path: Path) -> None:
    """A new random key at `path`, 0600, replaced atomically (a worker never reads half)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".ticket-")  # mode 0600
    try:
        os.write(fd, os.urandom(KEY_SIZE))
        os.fsync(fd)
        os.close(fd)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


class _LibSsl:
    """The libssl that Python's `_ssl` is linked against, its symbols reached through
    the extension module (dlsym searches its dependencies)."""

    def __init__(self) -> None:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)
        version = lib.OpenSSL_version_num
        version.restype = ctypes.c_ulong
        version.argtypes = []
        if version() != ssl.OPENSSL_VERSION_NUMBER:
            raise OSError(f"libssl {version():#x} is not the one ssl was built with")
        self.get_options = lib.SSL_CTX_get_options
        self.get_options.restype = ctypes.c_uint64
        self.get_options.argtypes = [ctypes.c_void_p]
        self.ctrl = lib.SSL_CTX_ctrl
        self.ctrl.restype = ctypes.c_long
        self.ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]


def ssl_ctx(context: ssl.SSLContext, lib: _LibSsl) -> int | None:
    """The SSL_CTX* of `context`, or None when it cannot be verified (module doc)."""
    if sys.implementation.name != "cpython":
        return None
    offset = object.__basicsize__  # PyObject_HEAD; then `SSL_CTX *ctx`
    if ssl.SSLContext.__basicsize__ < offset + ctypes.sizeof(ctypes.c_void_p):
        return None
    pointer = ctypes.c_void_p.from_address(id(context) + offset).value
    if not pointer:
        return None
    original = context.options
    if lib.get_options(pointer) != original:
        return None
    flip = ssl.OP_NO_TICKET
    try:
        context.options = original ^ flip
        matches = lib.get_options(pointer) == original ^ flip
    finally:
        context.options = original
    return pointer if matches and lib.get_options(pointer) == original else None


class TicketKeys:
    """The node's ticket key on one worker's TLS listener context (see the module doc)."""

    def __init__(self, context: ssl.SSLContext, path: Path) -> None:
        self.context = context
        self.path = path
        self._pointer: int | None = None
        self._lib: _LibSsl | None = None
        self._stamp: tuple[int, int] | None = None
        try:
            self._lib = _LibSsl()
            self._pointer = ssl_ctx(context, self._lib)
        except (OSError, AttributeError) as exc:
            log.warning("TLS session tickets stay per worker: %s", exc)
            return
        if self._pointer is None:
            log.warning("TLS session tickets stay per worker: no verified SSL_CTX")

    @property
    def shared(self) -> bool:
        return self._pointer is not None

    def refresh(self) -> bool:
        """Install the key file's key when it changed since the last call (True then)."""
        if self._pointer is None or self._lib is None:
            return False
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns)
            if stamp == self._stamp:
                return False
            key = self.path.read_bytes()
        except OSError as exc:
            log.warning("TLS ticket key %s unreadable: %s", self.path, exc)
            return False
        if len(key) != KEY_SIZE:
            log.warning("TLS ticket key %s: %d bytes, not %d", self.path, len(key), KEY_SIZE)
            return False
        buffer = ctypes.create_string_buffer(key, KEY_SIZE)
        if self._lib.ctrl(self._pointer, SSL_CTRL_SET_TLSEXT_TICKET_KEYS, KEY_SIZE, buffer) != 1:
            log.warning("OpenSSL refused the TLS ticket key")
            return False
        ctypes.memset(buffer, 0, KEY_SIZE)
        self._stamp = stamp
        return True
