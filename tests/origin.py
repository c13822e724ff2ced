"""A real HTTP origin on loopback for tests, serving scripted responses.

Each test registers what a path answers; the origin counts and records every request it
receives, so tests can assert how many reached the origin and with which headers.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None  # Content-Length to announce (default: len(body) for bytes)
    chunked: bool = False
    delay: float = 0.0  # before the head
    cut_after: int | None = None  # close the connection after this many body bytes
    # Interim (1xx) responses written before the final one, as (status, fields); then the
    # final one waits for `hold` (if given) to be set.
    interim: list[tuple[int, list[tuple[str, str]]]] = field(default_factory=list)
    hold: threading.Event | None = None


Script = Callable[["Seen"], Reply]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Origin:
    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Script] = {}
        self.seen: dict[str, list[Seen]] = defaultdict(list)
        self._lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with origin._lock:
                    origin.seen[self.path].append(seen)
                    script = origin.routes.get(self.path) or origin.routes.get(
                        self.path.partition("?")[0]
                    )
                reply = script(seen) if script else Reply(404, body=b"no route\n")
                if reply.delay:
                    time.sleep(reply.delay)
                for status, fields in reply.interim:
                    lines = [f"HTTP/1.1 {status} Interim", *(f"{n}: {v}" for n, v in fields)]
                    self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                if reply.hold is not None:
                    reply.hold.wait(30)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                chunks = [reply.body] if isinstance(reply.body, bytes) else reply.body
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif reply.length is not None:
                    self.send_header("Content-Length", str(reply.length))
                elif isinstance(reply.body, bytes):
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command == "HEAD" or reply.status in (204, 304):
                    return
                sent = 0
                try:
                    for chunk in chunks:
                        if reply.cut_after is not None and sent + len(chunk) > reply.cut_after:
                            chunk = chunk[: reply.cut_after - sent]
                            self.wfile.write(chunk)
                            self.wfile.flush()
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        if reply.chunked:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        else:
                            self.wfile.write(chunk)
                        sent += len(chunk)
                    if reply.chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:  # HTTPS: the handshake happens in each handler's thread
            self.server.socket = tls.wrap_socket(
                self.server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def route(self, path: str, script: Script | Reply) -> None:
        with self._lock:
            self.routes[path] = script if callable(script) else (lambda _s, r=script: r)

    def count(self, path: str) -> int:
        with self._lock:
            return len(self.seen[path])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
