"""Loopback ports for servers the tests start later (nats-server, pebble, `pullzone serve`).

A port found by bind(("127.0.0.1", 0)) and closed again lies in the kernel's ephemeral
range (32768-60999 here): until the server binds it, any connect() or bind(0) on the
machine may take it (CI once lost a nats-server route port that way). These ports come
from below that range instead, where the kernel never hands one out by itself: one run
walks them in order from a random start, and skips any port something already holds."""

from __future__ import annotations

import random
import socket

_FIRST, _LAST = 20000, 32000  # below Linux's default ip_local_port_range
_next = random.randrange(_FIRST, _LAST)


def free_port() -> int:
    """A loopback port nothing listens on, not handed out before in this run."""
    global _next
    for _ in range(_LAST - _FIRST):
        port = _next
        _next = _FIRST if _next + 1 >= _LAST else _next + 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free loopback port in {_FIRST}-{_LAST}")


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports."""
    return [free_port() for _ in range(n)]
