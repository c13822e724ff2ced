"""`pullzone prefetch ZONE`: its usage errors, a `*` refused before anything is sent, the
progress bar on a terminal, pending edges and failed batches, against a scripted API on
loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cli_support import run, said
from origin import Origin, Reply

from pullzone.cli.output import err
from pullzone.cli.path_lists import listed_paths

PREFETCH = "/v2/zones/http/pull/42/prefetch"


@pytest.fixture()
def api() -> Iterator[Origin]:
    """A scripted API on loopback: its prefetch route answers what each test says."""
    server = Origin()
    yield server
    server.close()


def answers(api: Origin, *replies: Reply) -> None:
    """The prefetch route answers `replies` in turn (the last from then on)."""
    queue = list(replies)
    api.route(PREFETCH, lambda seen: queue.pop(0) if len(queue) > 1 else queue[0])


def prefetched(n: int = 1, files: int = 1, pending: list[str] | None = None) -> Reply:
    body = {"result": "success", "message": "Zone Prefetched", "id": n, "files": files}
    if pending:
        body["pending"] = pending
    return Reply(200, [("Content-Type", "application/json")], json.dumps(body).encode())


def refused(status: int, message: str) -> Reply:
    body = json.dumps({"result": "error", "message": message}).encode()
    return Reply(status, [("Content-Type", "application/json")], body)


def sent(api: Origin) -> list[list[str]]:
    """The files of each prefetch request the API got, in order."""
    return [json.loads(s.body)["files"] for s in api.seen.get(PREFETCH, [])]


def env_for(api: Origin) -> dict[str, str]:
    return {"PULLZONE_API_URL": f"{api.url}/v2", "PULLZONE_API_KEY": "k"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to prefetch: give paths, or --from-file FILE"),
        (["/a", "--skip", "2"], "--skip goes with --from-file"),
        (["--from-file", "-", "/a"], "--from-file prefetches the paths it lists: give no PATH"),
        (["a.css"], "'a.css': a path starts with /"),
        (["/img/*.png"], "'/img/*.png' has a *: give the objects themselves"),
        (["https://cdn.example/*"], "has a *"),
    ],
)
def test_usage_errors_send_nothing(api: Origin, args: list[str], message: str) -> None:
    answers(api, prefetched())
    result = run("prefetch", "42", *args, env=env_for(api), input="/b\n")
    assert result.exit_code == 2
    assert message in said(result.stderr)
    assert sent(api) == []


def test_a_star_in_the_query_string_is_the_character_itself(api: Origin) -> None:
    answers(api, prefetched())
    result = run("prefetch", "42", "/search?q=*", env=env_for(api))
    assert result.exit_code == 0, result.output
    assert sent(api) == [["/search?q=*"]]
    assert listed_paths("/search?q=*\n", globs=False) == [(1, "/search?q=*")]


def test_a_line_with_a_star_is_named_and_nothing_is_sent(api: Origin) -> None:
    answers(api, prefetched())
    text = "/a\n" * 1500 + "*.js\n"
    result = run("prefetch", "42", "--from-file", "-", input=text, env=env_for(api))
    assert result.exit_code == 2
    assert "-, line 1501: '*.js' has a *: list the objects themselves; nothing was prefetched" in (
        said(result.stderr)
    )
    assert sent(api) == []
    with pytest.raises(ValueError, match="line 1: 'img/a' is not a path starting with / nor"):
        listed_paths("img/a\n", globs=False)


def test_a_terminal_gets_a_progress_bar(api: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    answers(api, prefetched(files=1000), prefetched(files=1000), prefetched(files=500))
    monkeypatch.setattr(err, "_force_terminal", True)
    text = "".join(f"/f/{n}\n" for n in range(2500))
    result = run("prefetch", "42", "--from-file", "-", input=text, env=env_for(api))
    assert result.exit_code == 0, result.output
    assert [len(files) for files in sent(api)] == [1000, 1000, 500]
    assert "prefetching zone 42" in result.stderr
    assert "2500/2500 paths, 3/3 requests" in said(result.stderr)
    assert said(result.stdout) == (
        "Zone Prefetched: zone 42, 2500 paths from stdin (lines 1-2500) in 3 requests"
    )


def test_pending_edges_are_named_and_the_command_succeeds(api: Origin) -> None:
    answers(api, prefetched(pending=["edge-2"]), prefetched(pending=["edge-3", "edge-2"]))
    one = run("prefetch", "42", "/a", env=env_for(api))
    assert one.exit_code == 0, one.output
    assert said(one.stdout) == "Zone Prefetched: zone 42, 1 path"
    assert said(one.stderr) == (
        "warning: edges that have not confirmed yet (they may not hold the objects yet): edge-2"
    )
    listed = run("prefetch", "42", "--from-file", "-", input="/a\n" * 1001, env=env_for(api))
    assert listed.exit_code == 0, listed.output
    assert said(listed.stderr).endswith("(they may not hold the objects yet): edge-2, edge-3")


def test_a_failed_batch_says_where_to_go_on(api: Origin) -> None:
    answers(api, prefetched(), refused(503, "the event log is unavailable"))
    text = "# deploy\n" + "/a\n" * 2500
    result = run(
        "--retries", "0", "prefetch", "42", "--from-file", "-", input=text, env=env_for(api)
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert said(result.stderr) == (
        "error: batch 1 of 3 applied (lines 1-1001); batch 2 failed (lines 1002-2001): "
        "the event log is unavailable (HTTP 503); "
        "re-run with --from-file - --skip 1001 (with the same input) to continue"
    )
    assert [len(files) for files in sent(api)] == [1000, 1000]  # batch 3 never went out


def test_no_answer_may_have_been_applied(closed_url: str) -> None:
    env = {"PULLZONE_API_URL": closed_url, "PULLZONE_API_KEY": "k"}
    result = run("--retries", "0", "prefetch", "42", "--from-file", "-", input="/a\n", env=env)
    assert result.exit_code == 1
    message = said(result.stderr)
    assert message.startswith("error: no batch of 1 applied; batch 1 failed (lines 1): ")
    assert "cannot reach the API" in message
    assert "it may or may not have been applied (prefetching it again is harmless)" in message
