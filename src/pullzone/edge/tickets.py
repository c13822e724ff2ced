"""TLS session ticket keys shared by a node's edge workers.

OpenSSL encrypts session tickets (RFC 8446 §4.6.1, RFC 5077) with keys each SSL_CTX
draws at random: with workers started by "spawn", each worker had its own, and a client
resuming on another worker (SO_REUSEPORT hands it any) got a full handshake. So the
supervisor writes the node's keys to `DATA_DIR/run/tls-ticket.key` (mode 0600, replaced
atomically) before it starts the workers, and rotates them every ROTATE_EVERY: the file
holds the current key and the previous one, 80 random bytes each (a 16-byte key name,
a 32-byte HMAC-SHA256 key, a 32-byte AES-256 key). Each worker reads the file again
when it changes, and hands OpenSSL the keys through the ticket key callback
(SSL_CTX_set_tlsext_ticket_key_cb) on its TLS listener's context (the one OpenSSL uses
for tickets, whichever certificate's context the SNI callback switched to): new tickets
under the current key; a ticket under the previous key still resumes, and is renewed.

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

KEY_SIZE = 80  # name (16) + HMAC-SHA256 key (32) + AES-256 key (32)
NAME_SIZE = 16
IV_SIZE = 16  # AES-CBC
ROTATE_EVERY = 24 * 3600.0  # seconds
SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB = 72
FILE_NAME = "tls-ticket.key"
KEEPER = "_pullzone_ticket_keys"  # the context's reference to the callback's owner

# int cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx,
#        HMAC_CTX *hctx, int enc)
_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_int,
)


def key_path(run_dir: Path) -> Path:
    return run_dir / FILE_NAME


def write_key(path: Path, *, keep_previous: bool = False) -> None:
    """A new random key at `path`, followed by the current one when `keep_previous` (a
    rotation: its tickets still resume); 0600, replaced atomically (a worker never reads
    half a file)."""
    previous = b""
    if keep_previous:
        with contextlib.suppress(OSError):
            previous = path.read_bytes()[:KEY_SIZE]
        if len(previous) != KEY_SIZE:
            previous = b""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".ticket-")  # mode 0600
    try:
        os.write(fd, os.urandom(KEY_SIZE) + previous)
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
        self.set_callback = lib.SSL_CTX_callback_ctrl
        self.set_callback.restype = ctypes.c_long
        self.set_callback.argtypes = [ctypes.c_void_p, ctypes.c_int, _Callback]
        cipher, digest = lib.EVP_aes_256_cbc, lib.EVP_sha256
        cipher.restype = digest.restype = ctypes.c_void_p
        cipher.argtypes = digest.argtypes = []
        self.aes_256_cbc, self.sha256 = cipher(), digest()
        self.encrypt_init, self.decrypt_init = lib.EVP_EncryptInit_ex, lib.EVP_DecryptInit_ex
        for init in (self.encrypt_init, self.decrypt_init):
            init.restype = ctypes.c_int
            init.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_char_p,
                ctypes.c_void_p,
            ]
        self.hmac_init = lib.HMAC_Init_ex
        self.hmac_init.restype = ctypes.c_int
        self.hmac_init.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]


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
    """The node's ticket keys on one worker's TLS listener context (see the module doc)."""

    def __init__(self, context: ssl.SSLContext, path: Path) -> None:
        self.context = context
        self.path = path
        self._pointer: int | None = None
        self._lib: _LibSsl | None = None
        self._stamp: tuple[int, int] | None = None
        # (name, HMAC key, AES key), the current one first: read by the callback.
        self._keys: tuple[tuple[bytes, bytes, bytes], ...] = ()
        self._callback = _Callback(self._ticket_key)  # kept alive with the context
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
        """Take the key file's keys when it changed since the last call (True then)."""
        if self._pointer is None or self._lib is None:
            return False
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns)
            if stamp == self._stamp:
                return False
            data = self.path.read_bytes()
        except OSError as exc:
            log.warning("TLS ticket keys %s unreadable: %s", self.path, exc)
            return False
        if not data or len(data) % KEY_SIZE:
            log.warning(
                "TLS ticket keys %s: %d bytes, not keys of %d", self.path, len(data), KEY_SIZE
            )
            return False
        self._keys = tuple(
            (data[i : i + 16], data[i + 16 : i + 48], data[i + 48 : i + 80])
            for i in range(0, len(data), KEY_SIZE)
        )
        first = self._stamp is None  # the first keys: from now on OpenSSL asks the callback
        if first and self._install() != 1:
            log.warning("OpenSSL refused the TLS ticket key callback")
            self._keys = ()
            return False
        self._stamp = stamp
        return True

    def _install(self) -> int:
        """The callback on the SSL_CTX, and this object (with the C thunk OpenSSL now
        calls) kept alive by the context: a thunk freed while the context still calls it
        would crash the process."""
        assert self._lib is not None
        done = int(
            self._lib.set_callback(self._pointer, SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB, self._callback)
        )
        if done == 1:
            setattr(self.context, KEEPER, self)  # an attribute of our own
        return done

    def _ticket_key(
        self, _ssl: int, name: int, iv: int, cipher: int, hmac: int, encrypt: int
    ) -> int:
        """OpenSSL's ticket key callback: 1 done, 2 decrypted with an older key (issue a
        new ticket), 0 unknown key (a full handshake), -1 failure."""
        lib, keys = self._lib, self._keys
        if lib is None or not keys:
            return 0  # no ticket issued, or none accepted
        if encrypt:
            key_name, hmac_key, aes_key = keys[0]
            ctypes.memmove(name, key_name, NAME_SIZE)
            ctypes.memmove(iv, os.urandom(IV_SIZE), IV_SIZE)
            init = lib.encrypt_init
            found = 1
        else:
            wanted = ctypes.string_at(name, NAME_SIZE)
            position = next((i for i, key in enumerate(keys) if key[0] == wanted), None)
            if position is None:
                return 0
            _, hmac_key, aes_key = keys[position]
            found = 1 if position == 0 else 2
            init = lib.decrypt_init
        if lib.hmac_init(hmac, hmac_key, len(hmac_key), lib.sha256, None) != 1:
            return -1
        if init(cipher, lib.aes_256_cbc, None, aes_key, iv) != 1:
            return -1
        return found
