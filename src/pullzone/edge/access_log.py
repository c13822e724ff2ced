"""Access log lines: the combined format of Apache and nginx, or JSON lines.

Each worker buffers its lines and appends them to the file once a second (or at 64 KiB)
with one write of whole lines: O_APPEND keeps the workers' writes from interleaving
within a line. `-` writes to standard output. Lines that cannot be written (a full disk,
a closed pipe) are dropped and counted (`pullzone_write_failures{what="access_log"}`).
"""

from __future__ import annotations

import json
import os
import time

from pullzone.edge.http import Exchange, Request
from pullzone.edge.stats import WriteFailures

FLUSH_AT = 64 * 1024
FORMATS = ("combined", "json")


def _quoted(text: str) -> str:
    """A field between double quotes in the combined format: `"` and `\\` escaped, and
    control bytes shown as \\xHH, so a request cannot forge log lines."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in out):
        out = "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in out)
    return out


class AccessLog:
    def __init__(self, destination: str, fmt: str, writes: WriteFailures) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"access log format {fmt!r}: one of {', '.join(FORMATS)}")
        self.json = fmt == "json"
        self.writes = writes
        if destination == "-":
            self._fd = os.dup(1)
        else:
            self._fd = os.open(destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._lines: list[str] = []
        self._size = 0
        self._stamp_second = -1
        self._stamp = ""

    def _clf_time(self, now: float) -> str:
        second = int(now)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))
        return self._stamp

    def add(self, request: Request, conn: Exchange, now: float, duration: float) -> None:
        hmap = request.hmap
        if self.json:
            line = json.dumps(
                {
                    "time": round(now, 3),
                    "client": conn.client,
                    "method": request.method,
                    "target": request.target,
                    "host": hmap.get("host", ""),
                    "status": conn.status,
                    "bytes": conn.sent,
                    "cache": conn.xcache,
                    "zone": conn.zone_id or None,
                    "duration_ms": round(duration * 1000, 3),
                    "referer": hmap.get("referer", ""),
                    "user_agent": hmap.get("user-agent", ""),
                },
                separators=(",", ":"),
            )
        else:
            line = (
                f"{conn.client or '-'} - - [{self._clf_time(now)}] "
                f'"{_quoted(request.method)} {_quoted(request.target)} HTTP/{request.version}" '
                f"{conn.status} {conn.sent} "
                f'"{_quoted(hmap.get("referer", "-"))}" "{_quoted(hmap.get("user-agent", "-"))}"'
            )
        self._lines.append(line)
        self._size += len(line) + 1
        if self._size >= FLUSH_AT:
            self.flush()

    def take(self) -> bytes:
        """The buffered lines, as bytes to write (emptying the buffer)."""
        if not self._lines:
            return b""
        data = ("\n".join(self._lines) + "\n").encode("utf-8", "backslashreplace")
        self._lines, self._size = [], 0
        return data

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        with self.writes.soft("access_log"):
            while view:
                view = view[os.write(self._fd, view) :]

    def flush(self) -> None:
        self.write(self.take())

    def close(self) -> None:
        self.flush()
        os.close(self._fd)
