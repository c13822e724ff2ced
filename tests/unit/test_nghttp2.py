"""HTTP/2 is libnghttp2's (edge/nghttp2.py): loaded when present, not offered when not."""

from __future__ import annotations

import subprocess
import sys

from pullzone.edge import nghttp2, tls


def test_the_library_is_loaded_and_h2_is_offered() -> None:
    assert nghttp2.available
    assert tls.ALPN_H2 == ("h2", "http/1.1")
    assert nghttp2.ffi.sizeof("nghttp2_nv") == 40  # the layout nghttp2.h gives on LP64


def test_without_the_library_https_offers_http1_only() -> None:
    # A fresh interpreter in which no shared library can be opened by cffi.
    code = (
        "import cffi\n"
        "def refuse(self, name, flags=0):\n"
        "    raise OSError(name)\n"
        "cffi.FFI.dlopen = refuse\n"
        "from pullzone.edge import h2, nghttp2, tls\n"
        "print(nghttp2.available, tls.ALPN_H2)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split() == ["False", "('http/1.1',)"]
