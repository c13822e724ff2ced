"""`pullzone purge ZONE --from-file F`: reading the list, its batches and their lines, what a
failed run says, and the command against a scripted API on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import run, said
from origin import Origin, Reply, Seen

from pullzone.cli.path_lists import Batch, batches, failure_message, listed_paths

# --- reading the list ---------------------------------------------------------------------------


def test_one_path_a_line_blank_lines_and_comments_skipped() -> None:
    text = "# purge after the deploy\n/a.png\n\n  /b/c.css  \r\n#/not-this\nhttps://cdn.example/d\n"
    assert listed_paths(text) == [(2, "/a.png"), (4, "/b/c.css"), (6, "https://cdn.example/d")]


def test_skip_counts_lines_of_the_file() -> None:
    text = "/1\n# comment\n/3\n/4\n"
    assert listed_paths(text, skip=2) == [(3, "/3"), (4, "/4")]
    assert listed_paths(text, skip=4) == []
    assert listed_paths(text, skip=99) == []


@pytest.mark.parametrize("line", ["a.png", "../x", "ftp://h/a", "images/*"])
def test_a_line_that_is_no_path_is_named(line: str) -> None:
    with pytest.raises(ValueError, match=f"line 3: {re.escape(repr(line))} is not a path"):
        listed_paths(f"/ok\n\n{line}\n/fine\n")


def test_lines_before_skip_are_not_checked() -> None:
    assert listed_paths("not a path\n/a\n", skip=1) == [(2, "/a")]


# --- batches and their lines --------------------------------------------------------------------


def test_batches_know_their_lines() -> None:
    paths = [(n, f"/p{n}") for n in (3, 4, 7, 8, 9)]
    assert batches(paths, max_files=2) == [
        Batch(1, 3, 4, ["/p3", "/p4"]),
        Batch(2, 7, 8, ["/p7", "/p8"]),
        Batch(3, 9, 9, ["/p9"]),
    ]
    assert batches([]) == []


def ten_batches(skip: int = 0) -> list[Batch]:
    return [
        Batch(n, skip + (n - 1) * 10_000 + 1, skip + n * 10_000, [f"/{n}"]) for n in range(1, 11)
    ]


def test_what_a_failed_run_says() -> None:
    message = failure_message(ten_batches(), 8, "boom (HTTP 400)", "paths.txt", 0)
    assert "batches 1\u20137 of 10" in message  # an en dash, as in print
    assert said(message) == (
        "batches 1-7 of 10 applied (lines 1-70000); batch 8 failed (lines 70001-80000): "
        "boom (HTTP 400); re-run with --from-file paths.txt --skip 70000 to continue"
    )


def test_when_the_first_batch_fails() -> None:
    message = failure_message(ten_batches(), 1, "boom", "my paths.txt", 0)
    assert said(message) == (
        "no batch of 10 applied; batch 1 failed (lines 1-10000): boom; "
        "re-run with --from-file 'my paths.txt' to continue"
    )


def test_a_run_that_skipped_lines_says_where_to_go_on() -> None:
    planned = ten_batches(skip=70_000)[:3]
    assert said(failure_message(planned, 1, "boom", "-", 70_000)) == (
        "no batch of 3 applied; batch 1 failed (lines 70001-80000): boom; "
        "re-run with --from-file - --skip 70000 (with the same input) to continue"
    )
    assert said(failure_message(planned, 2, "boom", "f", 70_000)).startswith(
        "batch 1 of 3 applied (lines 70001-80000); batch 2 failed (lines 80001-90000)"
    )


# --- the command: usage errors ------------------------------------------------------------------


@pytest.fixture()
def api() -> Iterator[Origin]:
    """A scripted API on loopback: its purge route answers what each test says."""
    server = Origin()
    yield server
    server.close()


PURGE = "/v2/zones/http/pull/42/purge"


def answers(api: Origin, *replies: Reply) -> None:
    """The purge route answers `replies` in turn (the last from then on)."""
    queue = list(replies)
    api.route(PURGE, lambda seen: queue.pop(0) if len(queue) > 1 else queue[0])


def purged(n: int = 0) -> Reply:
    body = {"result": "success", "message": "Zone Purged", "id": n, "purged": 1}
    return Reply(200, [("Content-Type", "application/json")], json.dumps(body).encode())


def refused(status: int, message: str, *headers: tuple[str, str]) -> Reply:
    body = json.dumps({"result": "error", "message": message}).encode()
    return Reply(status, [("Content-Type", "application/json"), *headers], body)


def sent(api: Origin) -> list[list[str]]:
    """The files of each purge request the API got, in order."""
    seen: list[Seen] = [s for path, all in api.seen.items() if path.startswith(PURGE) for s in all]
    return [json.loads(s.body)["files"] for s in seen]


def env_for(api: Origin) -> dict[str, str]:
    return {"PULLZONE_API_URL": f"{api.url}/v2", "PULLZONE_API_KEY": "k"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/a"], "give no PATH, --tag or --all"),
        (["--tag", "t"], "give no PATH, --tag or --all"),
        (["--all", "--yes"], "give no PATH, --tag or --all"),
    ],
)
def test_from_file_goes_alone(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("/a\n")
    result = run("purge", "42", "--from-file", str(tmp_path / "p.txt"), *args)
    assert result.exit_code == 2
    assert message in said(result.stderr)


def test_skip_goes_with_from_file() -> None:
    result = run("purge", "42", "/a", "--skip", "3")
    assert result.exit_code == 2
    assert "--skip goes with --from-file" in said(result.stderr)
    assert run("purge", "42", "--from-file", "-", "--skip", "-1", input="/a\n").exit_code == 2


def test_a_bad_line_purges_nothing(api: Origin, tmp_path: Path) -> None:
    answers(api, purged())
    listed = tmp_path / "paths.txt"
    listed.write_text("/a\n" * 20_000 + "../x\n")
    result = run("purge", "42", "--from-file", str(listed), env=env_for(api))
    assert result.exit_code == 2
    assert f"{listed}, line 20001: '../x' is not a path" in said(result.stderr)
    assert "nothing was purged" in said(result.stderr)
    assert sent(api) == []


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    result = run("purge", "42", "--from-file", str(tmp_path / "missing.txt"))
    assert result.exit_code == 2
    assert "cannot read" in said(result.stderr) and "No such file or directory" in result.stderr
    (tmp_path / "bin").write_bytes(b"/a\n\xff\xfe\n")
    result = run("purge", "42", "--from-file", str(tmp_path / "bin"))
    assert result.exit_code == 2
    assert "is not UTF-8 text" in said(result.stderr)


def test_a_list_with_nothing_in_it(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("# nothing yet\n\n")
    result = run("purge", "42", "--from-file", str(tmp_path / "p.txt"))
    assert result.exit_code == 2
    assert "nothing to purge" in said(result.stderr) and "lists no path" in said(result.stderr)
    (tmp_path / "p.txt").write_text("/a\n/b\n")
    result = run("purge", "42", "--from-file", str(tmp_path / "p.txt"), "--skip", "2")
    assert result.exit_code == 2
    assert "lists no path after its first 2 lines" in said(result.stderr)


# --- the command against a scripted API ---------------------------------------------------------


def paths_file(tmp_path: Path, count: int, bad: dict[int, str] | None = None) -> Path:
    lines = [(bad or {}).get(n, f"/file/{n}") for n in range(1, count + 1)]
    listed = tmp_path / "paths.txt"
    listed.write_text("\n".join(lines) + "\n")
    return listed


def test_a_long_list_in_batches(api: Origin, tmp_path: Path) -> None:
    answers(api, purged())
    listed = paths_file(tmp_path, 25_000)
    result = run("purge", "42", "--from-file", str(listed), "--delete", env=env_for(api))
    assert result.exit_code == 0, result.output
    assert [len(files) for files in sent(api)] == [10_000, 10_000, 5_000]
    assert sent(api)[2][-1] == "/file/25000"
    assert all("?delete=true" in path for path in api.seen if path.startswith(PURGE))
    assert said(result.stdout) == (
        f"Zone Purged: zone 42, 25000 paths from {listed} (lines 1-25000) in 3 requests, "
        "hard purge (removed), 3 objects purged"
    )
    assert result.stderr == ""  # no terminal: no progress bar


def test_json_says_what_each_request_answered(api: Origin, tmp_path: Path) -> None:
    answers(api, purged(1), purged(2))
    result = run(
        "purge", "42", "--from-file", "-", "--json", input="/a\n" * 12_000, env=env_for(api)
    )
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    assert {k: v for k, v in report.items() if k != "purges"} == {
        "result": "success",
        "message": "Zone Purged",
        "zone": 42,
        "files": 12_000,
        "requests": 2,
        "lines": [1, 12_000],
    }
    assert [p["id"] for p in report["purges"]] == [1, 2]


def test_a_failed_batch_stops_the_run_and_says_where_to_go_on(api: Origin, tmp_path: Path) -> None:
    answers(api, purged(), purged(), refused(400, "'/x/../y' has a . or .. segment"))
    listed = paths_file(tmp_path, 45_000, bad={25_001: "/x/../y"})
    result = run("purge", "42", "--from-file", str(listed), env=env_for(api))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert said(result.stderr) == (
        "error: batches 1-2 of 5 applied (lines 1-20000); batch 3 failed (lines 20001-30000): "
        "'/x/../y' has a . or .. segment (HTTP 400); "
        f"re-run with --from-file {listed} --skip 20000 to continue"
    )
    assert len(sent(api)) == 3  # batches 4 and 5 never went out


def test_going_on_with_skip(api: Origin, tmp_path: Path) -> None:
    answers(api, purged())
    listed = paths_file(tmp_path, 45_000)
    result = run("purge", "42", "--from-file", str(listed), "--skip", "20000", env=env_for(api))
    assert result.exit_code == 0, result.output
    assert [files[0] for files in sent(api)] == ["/file/20001", "/file/30001", "/file/40001"]
    assert "25000 paths from" in said(result.stdout) and "(lines 20001-45000)" in said(
        result.stdout
    )


def test_a_429_in_the_middle_is_waited_out(api: Origin, tmp_path: Path) -> None:
    answers(api, purged(), refused(429, "rate limit exceeded", ("Retry-After", "0")), purged())
    listed = paths_file(tmp_path, 15_000)
    result = run("--retries", "2", "purge", "42", "--from-file", str(listed), env=env_for(api))
    assert result.exit_code == 0, result.output
    assert [len(files) for files in sent(api)] == [10_000, 5_000, 5_000]  # batch 2 twice


def test_without_retries_a_429_fails_the_batch(api: Origin, tmp_path: Path) -> None:
    answers(api, purged(), refused(429, "rate limit exceeded", ("Retry-After", "1")))
    listed = paths_file(tmp_path, 15_000)
    result = run("purge", "42", "--from-file", str(listed), env=env_for(api))
    assert result.exit_code == 1
    assert "batch 1 of 2 applied (lines 1-10000); batch 2 failed (lines 10001-15000): " in said(
        result.stderr
    )
    assert "rate limit exceeded (HTTP 429)" in result.stderr
