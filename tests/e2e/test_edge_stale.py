"""Stale answers (docs/edge.md, Stale answers) through real sockets and real processes: a
real `pullzone serve` with two edge workers, a real origin on loopback, real clients.

- RFC 5861 stale-while-revalidate: a stale copy within its window is answered at once
  (`X-Cache: STALE`) and refreshed in the background, once for the node; past it the
  client waits for the origin.
- stale-if-error: a failing origin (5xx, refused) is answered for by the stored copy
  within its window; never with must-revalidate.
- the zone's edge.prefresh: a request in the last tenth of an object's life is a HIT and
  refreshes it in the background.
- negative caching: which errors are stored, for how long (NEGATIVE_TTL), and that they
  are evicted before content.

Freshness here is second-grained (the origin's Date has a one-second resolution, so an
object with max-age=N is fresh for N-1 to N seconds after its fill): the tests await what
they can observe (X-Cache, the origin's requests), and sleep only for a window to pass
where nothing else shows it.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from origin import Origin, Reply, Seen
from server import Server, samples, until

Zone = dict[str, Any]
REFRESHES = "pullzone_background_refreshes_total"
_aliases = itertools.count(1)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two edge workers (a background refresh must be one for the node, not one per
    worker), and an origin timeout longer than the slow origins below (the session's
    shared server waits 2 s only)."""
    s = Server(
        tmp_path_factory.mktemp("stale") / "data", "--origin-timeout", "10", workers=2
    ).start()
    yield s
    s.stop()


def new_zone(node: Server, origin: Origin, **fields: Any) -> Zone:
    return dict(node.create_zone(origin.url, alias=f"stale{next(_aliases)}", **fields))


def first_then(first: Reply, then: Reply) -> Callable[[Seen], Reply]:
    """An origin script: `first` for the first request, `then` for every later one."""
    calls = itertools.count()
    return lambda _seen: first if next(calls) == 0 else then


def fresh_get(node: Server, host: str, path: str) -> tuple[httpx.Response, float]:
    """A GET on a connection of its own (any worker may take it), and how long it took."""
    started = time.monotonic()
    with httpx.Client(base_url=node.edge_url, timeout=30) as client:
        response = client.get(path, headers={"Host": host})
    return response, time.monotonic() - started


def refreshes(node: Server) -> dict[str, float]:
    """pullzone_background_refreshes_total by result."""
    prefix = REFRESHES + '{result="'
    return {
        name.removeprefix(prefix).removesuffix('"}'): value
        for name, value in samples(node).items()
        if name.startswith(prefix)
    }


def grew(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def poll(
    produce: Callable[[], httpx.Response],
    done: Callable[[httpx.Response], bool],
    timeout: float,
    every: float = 0.05,
) -> list[httpx.Response]:
    """Every answer of `produce` until one satisfies `done` (the last); fails past
    `timeout`."""
    answers = []
    deadline = time.monotonic() + timeout
    while True:
        answers.append(produce())
        if done(answers[-1]):
            return answers
        assert time.monotonic() < deadline, [(r.status_code, r.headers) for r in answers[-3:]]
        time.sleep(every)


def xcache(response: httpx.Response) -> str:
    return str(response.headers.get("x-cache"))


# -- stale-while-revalidate -----------------------------------------------------------


def test_stale_while_revalidate_answers_at_once_with_one_refresh_for_the_node(
    node: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    v1 = Reply(
        headers=[("Cache-Control", "max-age=1, stale-while-revalidate=60"), ("ETag", '"v1"')],
        body=b"one",
    )
    # The refresh: a new version, slow to come (2 s), so that every request answered
    # meanwhile shows whether it waited for it.
    v2 = Reply(headers=[("Cache-Control", "max-age=60"), ("ETag", '"v2"')], body=b"two", delay=2)
    origin.route(path, first_then(v1, v2))
    before = refreshes(node)
    assert xcache(node.get(host, path)) == "MISS"
    # Stale within a second (max-age=1); the first STALE answer starts the refresh.
    answers = poll(lambda: node.get(host, path), lambda r: xcache(r) == "STALE", timeout=5)
    assert {xcache(r) for r in answers[:-1]} <= {"HIT"}
    assert answers[-1].content == b"one"

    # A burst while the origin takes its time, each on a connection of its own: both
    # workers answer, none waits for the origin, none asks it again.
    start = threading.Barrier(40)

    def one(_: int) -> tuple[str, bytes, float]:
        with httpx.Client(base_url=node.edge_url, timeout=30) as client:
            start.wait(5)
            started = time.monotonic()
            response = client.get(path, headers={"Host": host})
            return xcache(response), response.content, time.monotonic() - started

    with ThreadPoolExecutor(40) as pool:
        burst = list(pool.map(one, range(40)))
    assert {(x, body) for x, body, _ in burst} <= {("STALE", b"one"), ("HIT", b"two")}, burst
    assert ("STALE", b"one") in {(x, body) for x, body, _ in burst}
    # Behaviour, not performance: the origin's answer takes 2 s, so an answer that waited
    # for it could not come within 1.
    assert max(took for _, _, took in burst) < 1.0, burst
    assert origin.count(path) == 2  # the fill, and the one background revalidation
    assert origin.seen[path][1].headers.get("if-none-match") == '"v1"'

    # The refresh completes: the new version is served from the cache, by every worker
    # (one that still held the old copy in memory finds the new one at its next look).
    def all_new(_: httpx.Response) -> bool:
        return all(
            (xcache(r), r.content) == ("HIT", b"two")
            for r, _ in (fresh_get(node, host, path) for _ in range(20))
        )

    poll(lambda: fresh_get(node, host, path)[0], all_new, timeout=10, every=0.1)
    assert origin.count(path) == 2
    counted = until(lambda: grew(before, refreshes(node)), lambda g: g.get("fetched", 0) >= 1)
    assert counted.get("fetched") == 1, counted
    assert "failed" not in counted and "revalidated" not in counted, counted


def test_past_the_stale_while_revalidate_window_the_client_waits_for_the_origin(
    node: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    v1 = Reply(
        headers=[("Cache-Control", "max-age=1, stale-while-revalidate=1"), ("ETag", '"v1"')],
        body=b"one",
    )
    v2 = Reply(headers=[("Cache-Control", "max-age=60"), ("ETag", '"v2"')], body=b"two", delay=0.5)
    origin.route(path, first_then(v1, v2))
    assert xcache(node.get(host, path)) == "MISS"
    filled = time.monotonic()
    # Nothing to await: a request before the window ends would be answered STALE and
    # start a refresh. Fresh for at most 1 s, stale-while-revalidate for 1 more.
    time.sleep(max(0.0, filled + 2.3 - time.monotonic()))
    response, took = fresh_get(node, host, path)
    assert (response.status_code, xcache(response), response.content) == (200, "EXPIRED", b"two")
    assert took >= 0.5  # it waited for the origin's answer
    assert origin.count(path) == 2
    assert origin.seen[path][1].headers.get("if-none-match") == '"v1"'
    assert xcache(node.get(host, path)) == "HIT"
    assert origin.count(path) == 2


def test_a_background_revalidation_answered_304_keeps_the_body_and_is_counted(
    node: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    fields = [("Cache-Control", "max-age=1, stale-while-revalidate=60"), ("ETag", '"v1"')]
    origin.route(
        path,
        first_then(
            Reply(headers=fields, body=b"one"),
            Reply(304, headers=[("Cache-Control", "max-age=60"), ("ETag", '"v1"')]),
        ),
    )
    before = refreshes(node)
    assert xcache(node.get(host, path)) == "MISS"
    answers = poll(lambda: node.get(host, path), lambda r: xcache(r) == "STALE", timeout=5)
    assert answers[-1].content == b"one"
    refreshed = poll(lambda: node.get(host, path), lambda r: origin.count(path) == 2, timeout=5)
    assert {xcache(r) for r in refreshed} <= {"STALE", "HIT"}
    # The 304 made it fresh again for 60 s: the same body, its age counted anew.
    hit = poll(lambda: node.get(host, path), lambda r: xcache(r) == "HIT", timeout=5)[-1]
    assert hit.content == b"one" and int(hit.headers["age"]) < 60
    assert origin.seen[path][1].headers.get("if-none-match") == '"v1"'
    assert origin.count(path) == 2
    counted = until(lambda: grew(before, refreshes(node)), lambda g: g.get("revalidated", 0) >= 1)
    assert counted.get("revalidated") == 1, counted
    assert "fetched" not in counted and "failed" not in counted, counted


def test_a_failed_background_refresh_keeps_the_stale_copy_and_is_tried_again(
    node: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    good = Reply(
        headers=[("Cache-Control", "max-age=1, stale-while-revalidate=60"), ("ETag", '"v1"')],
        body=b"one",
    )
    origin.route(path, first_then(good, Reply(503, body=b"down")))
    before = refreshes(node)
    assert xcache(node.get(host, path)) == "MISS"
    poll(lambda: node.get(host, path), lambda r: xcache(r) == "STALE", timeout=5)
    # The refresh fails; every answer meanwhile is the stale copy, at once.
    failed = until(lambda: grew(before, refreshes(node)), lambda g: g.get("failed", 0) >= 1)
    assert failed.get("failed", 0) >= 1, failed
    stale = [node.get(host, path) for _ in range(10)]
    assert [(r.status_code, xcache(r), r.content) for r in stale] == [(200, "STALE", b"one")] * 10
    # Not one origin request per STALE answer: one refresh a second per worker at most.
    assert origin.count(path) <= 1 + 2 * 2
    # The origin is back: a later STALE answer's refresh brings the new version.
    origin.route(
        path, Reply(headers=[("Cache-Control", "max-age=60"), ("ETag", '"v2"')], body=b"two")
    )
    poll(
        lambda: node.get(host, path),
        lambda r: (xcache(r), r.content) == ("HIT", b"two"),
        timeout=5,
        every=0.1,
    )


def test_a_request_with_cache_control_waits_for_the_origin_within_the_window(
    node: Server, origin: Origin, path: str
) -> None:
    """A browser's reload (Cache-Control: max-age=0) asked for a validated answer: not a
    STALE one, even within the stale-while-revalidate window."""
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    # Age: 2 with max-age=1: stale from the start, within its 60 s window.
    fields = [("Cache-Control", "max-age=1, stale-while-revalidate=60"), ("Age", "2")]
    origin.route(
        path,
        first_then(
            Reply(headers=[*fields, ("ETag", '"v1"')], body=b"one"),
            Reply(headers=[("Cache-Control", "max-age=60"), ("ETag", '"v2"')], body=b"two"),
        ),
    )
    assert xcache(node.get(host, path)) == "MISS"
    reload = node.get(host, path, headers={"Cache-Control": "max-age=0"})
    assert (xcache(reload), reload.content) == ("EXPIRED", b"two")
    assert origin.count(path) == 2
    # The worker that stored the new version no longer serves the old one from memory
    # (it did, STALE, before fills.py dropped it there on storing).
    after = node.get(host, path)
    assert (xcache(after), after.content) == ("HIT", b"two")


def test_no_worker_serves_stale_what_another_worker_has_stored_anew(
    node: Server, origin: Origin, path: str
) -> None:
    """Both workers hold the copy in memory; one of them stores a new version (a reload):
    neither answers the old one STALE afterwards."""
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    origin.route(
        path,
        first_then(
            Reply(
                headers=[("Cache-Control", "max-age=2, stale-while-revalidate=60")],
                body=b"one",
            ),
            Reply(headers=[("Cache-Control", "max-age=60")], body=b"two"),
        ),
    )
    assert xcache(node.get(host, path)) == "MISS"
    # New connections land on either worker (SO_REUSEPORT): 2^-20 that one never does.
    assert {xcache(fresh_get(node, host, path)[0]) for _ in range(20)} == {"HIT"}
    time.sleep(2.1)  # the copy goes stale: nothing to await but the clock
    reload = node.get(host, path, headers={"Cache-Control": "max-age=0"})
    assert (xcache(reload), reload.content) == ("EXPIRED", b"two")
    after = [fresh_get(node, host, path)[0] for _ in range(20)]
    assert {(xcache(r), r.content) for r in after} == {("HIT", b"two")}
    assert origin.count(path) == 2


def test_a_soft_purged_copy_is_not_served_while_revalidating(
    node: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    fields = [("Cache-Control", "max-age=60, stale-while-revalidate=600"), ("ETag", '"v1"')]
    origin.route(
        path,
        first_then(
            Reply(headers=fields, body=b"one"),
            Reply(headers=[("Cache-Control", "max-age=60"), ("ETag", '"v2"')], body=b"two"),
        ),
    )
    assert xcache(node.get(host, path)) == "MISS"
    assert node.purge(zone["id"], [path]).status_code == 200  # soft
    after = node.get(host, path)
    assert (xcache(after), after.content) == ("EXPIRED", b"two")
    assert origin.count(path) == 2


@pytest.mark.parametrize(
    ("directives", "while_revalidating"),
    [("s-maxage=1, stale-while-revalidate=60", True), ("s-maxage=1", False)],
    ids=["explicit", "implied-proxy-revalidate"],
)
def test_s_maxage_is_served_stale_only_with_an_explicit_directive(
    node: Server, origin: Origin, path: str, directives: str, while_revalidating: bool
) -> None:
    """What Next.js and Vercel send (s-maxage with stale-while-revalidate) is served
    stale; s-maxage alone implies proxy-revalidate, so not even a failing origin is
    answered for."""
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    origin.route(
        path,
        first_then(
            Reply(headers=[("Cache-Control", directives), ("Age", "2")], body=b"one"),
            Reply(503, body=b"down"),
        ),
    )
    assert xcache(node.get(host, path)) == "MISS"
    again = node.get(host, path)
    if while_revalidating:
        assert (again.status_code, xcache(again), again.content) == (200, "STALE", b"one")
    else:
        assert again.status_code == 503 and again.content != b"one"


# -- stale-if-error -------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["503", "refused"])
@pytest.mark.parametrize(
    ("directives", "stands_in"),
    [
        ("max-age=1, stale-if-error=60", True),
        ("max-age=1, must-revalidate, stale-if-error=60", False),
    ],
    ids=["stale-if-error", "must-revalidate"],
)
def test_stale_if_error_stands_in_for_a_failing_origin(
    node: Server, path: str, failure: str, directives: str, stands_in: bool
) -> None:
    origin = Origin()  # its own: the "refused" case closes it
    try:
        zone = new_zone(node, origin)
        host = zone["fqdn"]
        # Connection: close, so that no pooled connection outlives the origin's listener.
        fields = [("Cache-Control", directives), ("Connection", "close")]
        origin.route(path, Reply(headers=fields, body=b"stored"))
        assert xcache(node.get(host, path)) == "MISS"
        if failure == "503":
            origin.route(path, Reply(503, body=b"overloaded"))
        else:
            origin.close()
        # Until it expires the copy is a HIT; the first request after asks the origin.
        answers = poll(lambda: node.get(host, path), lambda r: xcache(r) != "HIT", timeout=5)
        failed = answers[-1]
        if stands_in:
            assert (failed.status_code, xcache(failed), failed.content) == (200, "STALE", b"stored")
        else:  # the edge's own error page, with the origin's status (502: no answer)
            assert failed.status_code == (503 if failure == "503" else 502)
            assert failed.content != b"stored"
        if failure == "503":
            assert origin.count(path) == 2
    finally:
        if failure == "503":
            origin.close()


def test_past_the_stale_if_error_window_the_error_is_answered(
    node: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(node, origin)
    host = zone["fqdn"]
    origin.route(
        path,
        first_then(
            Reply(headers=[("Cache-Control", "max-age=1, stale-if-error=1")], body=b"stored"),
            Reply(503, body=b"overloaded"),
        ),
    )
    assert xcache(node.get(host, path)) == "MISS"
    filled = time.monotonic()
    time.sleep(max(0.0, filled + 2.3 - time.monotonic()))  # fresh ≤ 1 s, stands in 1 more
    late = node.get(host, path)
    assert late.status_code == 503 and late.content != b"stored"
    assert origin.count(path) == 2


# -- edge.prefresh --------------------------------------------------------------------


def test_prefresh_refreshes_in_the_last_tenth_of_the_life_in_the_background(
    node: Server, origin: Origin, path: str
) -> None:
    prefreshing = new_zone(node, origin, edge={"prefresh": "Y"})
    plain = new_zone(node, origin)
    own, other = path, path + "-plain"
    for p in (own, other):
        origin.route(
            p,
            first_then(
                Reply(headers=[("Cache-Control", "max-age=3"), ("ETag", '"v1"')], body=b"one"),
                Reply(headers=[("Cache-Control", "max-age=60"), ("ETag", '"v2"')], body=b"two"),
            ),
        )
    before = refreshes(node)
    assert xcache(node.get(prefreshing["fqdn"], own)) == "MISS"
    assert xcache(node.get(plain["fqdn"], other)) == "MISS"

    # Asked every 50 ms: the last tenth (0.3 s) is met. Every answer is a HIT, and one of
    # them (in that last tenth) has the origin asked in the background.
    def asked(_: httpx.Response) -> bool:
        time.sleep(0.05)  # the background request is sent once the answer is written
        return bool(origin.count(own) >= 2)

    answers = poll(lambda: node.get(prefreshing["fqdn"], own), asked, timeout=5, every=0)
    assert [(xcache(r), r.content) for r in answers] == [("HIT", b"one")] * len(answers)
    assert origin.seen[own][1].headers.get("if-none-match") == '"v1"'
    # The next requests see the refreshed object, which nobody waited for.
    poll(
        lambda: node.get(prefreshing["fqdn"], own),
        lambda r: (xcache(r), r.content) == ("HIT", b"two"),
        timeout=5,
    )
    assert origin.count(own) == 2
    counted = until(lambda: grew(before, refreshes(node)), lambda g: g.get("fetched", 0) >= 1)
    assert counted.get("fetched") == 1, counted

    # Without prefresh: HITs until the object expires, the origin never asked meanwhile;
    # then the client waits for the origin.
    def expired(r: httpx.Response) -> bool:
        if xcache(r) == "HIT":
            assert origin.count(other) == 1
            return False
        return True

    answers = poll(lambda: node.get(plain["fqdn"], other), expired, timeout=5)
    assert (xcache(answers[-1]), answers[-1].content) == ("EXPIRED", b"two")
    assert origin.count(other) == 2


# -- negative caching -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "stored"),
    [
        (404, [("Cache-Control", "max-age=60")], True),
        (410, [], True),  # heuristically cacheable: the zone's TTL (bounded, below)
        (503, [], False),  # a server error without explicit freshness
        (503, [("Cache-Control", "max-age=30")], True),  # an origin shedding load
        (500, [("Cache-Control", "s-maxage=30")], True),
        (502, [("Cache-Control", "public")], False),  # public is not explicit freshness
    ],
    ids=[
        "404-max-age",
        "410-implicit",
        "503-implicit",
        "503-max-age",
        "500-s-maxage",
        "502-public",
    ],
)
def test_which_errors_are_stored(
    node: Server,
    origin: Origin,
    path: str,
    status: int,
    headers: list[tuple[str, str]],
    stored: bool,
) -> None:
    zone = new_zone(node, origin)
    origin.route(path, Reply(status, headers=headers, body=b"error page"))
    first, second = (node.get(zone["fqdn"], path) for _ in range(2))
    assert (first.status_code, xcache(first)) == (status, "MISS")
    assert (second.status_code, second.content) == (status, b"error page")
    assert xcache(second) == ("HIT" if stored else "MISS")
    assert origin.count(path) == (1 if stored else 2)


def test_an_error_without_explicit_freshness_lives_180_s_whatever_the_zone_ttl(
    node: Server, origin: Origin, path: str
) -> None:
    """The zone's TTL (4 h by default) is for content: a 404 without freshness of its own
    lives at most NEGATIVE_TTL (180 s). 180 s cannot be waited for here; the origin says
    both responses are 178 s old already (Age), so the 404 expires within 2 s, and the
    200 beside it stays fresh for the zone's 4 h."""
    zone = new_zone(node, origin)
    assert zone["cache"]["cacheInSecs"] == 4 * 3600
    host, missing, content = zone["fqdn"], path, path + "-content"
    origin.route(missing, Reply(404, headers=[("Age", "178")], body=b"not here"))
    origin.route(content, Reply(200, headers=[("Age", "178")], body=b"here"))
    for p in (missing, content):
        assert xcache(node.get(host, p)) == "MISS"
        hit = node.get(host, p)
        assert xcache(hit) == "HIT"  # stored: the zone's TTL applies
        assert int(hit.headers["age"]) >= 178

    def expired(r: httpx.Response) -> bool:
        assert r.status_code == 404 and r.content == b"not here"
        return xcache(r) != "HIT"

    answers = poll(lambda: node.get(host, missing), expired, timeout=5)
    assert xcache(answers[-1]) in ("EXPIRED", "MISS")
    assert origin.count(missing) == 2
    still = node.get(host, content)
    assert (xcache(still), still.content) == ("HIT", b"here")
    assert origin.count(content) == 1


def test_stored_errors_are_evicted_before_content(
    tmp_path: Path, origin: Origin, path: str
) -> None:
    """A 404 storm in a small cache: the errors go, the content stays (though stored
    first, and not asked for since)."""
    server = Server(tmp_path / "data", "--max-cache-size", "1MiB", workers=1).start()
    try:
        zone = server.create_zone(origin.url, alias="negative-lru")
        host = zone["fqdn"]
        origin.route(path, Reply(headers=[("Cache-Control", "max-age=600")], body=b"c" * 200_000))
        assert xcache(server.get(host, path)) == "MISS"
        page = b"e" * 60_000
        for i in range(30):  # 1.8 MB of errors into a 1 MiB cache
            origin.route(f"{path}-{i}", Reply(404, [("Cache-Control", "max-age=600")], page))
            assert xcache(server.get(host, f"{path}-{i}")) == "MISS"
        # Errors stored last are kept; the first ones made room for them.
        with closing(sqlite3.connect(server.data_dir / "cache.db")) as db:
            stored = {row[0] for row in db.execute("SELECT path FROM objects")}
        assert path in stored and f"{path}-29" in stored
        assert f"{path}-0" not in stored  # evicted
        assert xcache(server.get(host, f"{path}-29")) == "HIT"
        kept = server.get(host, path)
        assert (xcache(kept), len(kept.content)) == ("HIT", 200_000)
        assert origin.count(path) == 1
        assert xcache(server.get(host, f"{path}-0")) == "MISS"  # evicted
    finally:
        server.stop()
