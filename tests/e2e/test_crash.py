"""kill -9 of a whole single node while purges are answered (issue #7): after a restart,
every purge that was answered is in the history and applied; nothing answered is lost."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from origin import Origin, Reply
from server import Server

OBJECTS = 40


def test_kill_9_during_purges_loses_no_answered_purge(tmp_path: Path, origin: Origin) -> None:
    server = Server(tmp_path / "data", workers=1, own_group=True).start()
    try:
        zone = server.create_zone(origin.url, alias="crash")
        host, zid = str(zone["fqdn"]), int(zone["id"])
        paths = [f"/crash/{i}.txt" for i in range(OBJECTS)]
        for path in paths:
            origin.route(path, Reply(200, [("Cache-Control", "max-age=600")], b"x"))
            server.get(host, path)
            assert server.get(host, path).headers["x-cache"] == "HIT"

        answered: dict[str, int] = {}  # path: purge id
        enough = threading.Event()

        def purge_all() -> None:
            for path in paths:
                try:
                    reply = server.purge(zid, [path], delete=True)
                except httpx.TransportError:
                    return  # the server is gone: this one was never answered
                if reply.status_code == 200:
                    answered[path] = reply.json()["id"]
                if len(answered) == OBJECTS // 4:
                    enough.set()

        purger = threading.Thread(target=purge_all)
        purger.start()
        assert enough.wait(30)
        server.kill()  # mid-stream, with no warning
        purger.join(30)
        assert OBJECTS // 4 <= len(answered) < OBJECTS

        server.start()
        history = server.api.get(f"/zones/http/pull/{zid}/purges").json()["purges"]
        assert set(answered.values()) <= {entry["id"] for entry in history}
        for path in answered:
            assert server.get(host, path).headers["x-cache"] == "MISS", path
        # Objects the purges never reached are still served from the cache.
        untouched = [p for p in paths if p not in answered][-1]
        assert server.get(host, untouched).headers["x-cache"] == "HIT"
    finally:
        server.kill()
