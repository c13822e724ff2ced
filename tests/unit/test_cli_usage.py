"""The `pullzone` command's usage errors and exit codes, on paths that reach no server."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import run, runner, said

import pullzone
from pullzone.cli.main import app

# --- usage errors: exit 2, nothing sent -------------------------------------------------------


def test_no_arguments_shows_help() -> None:
    result = run()
    assert result.exit_code == 2
    assert "serve" in result.output and "purge" in result.output


def test_help_and_version() -> None:
    assert run("--help").exit_code == 0
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pullzone {pullzone.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ["purge"],
        ["zones", "show"],
        ["zones", "update"],
        ["zones", "delete"],
        ["zones", "create"],
        ["zones", "create", "--name", "n"],
        ["zones", "create", "--origin", "http://o.example"],
        ["zones", "frobnicate"],
        ["serve", "--no-such-flag"],
    ],
)
def test_missing_or_unknown_arguments(args: list[str]) -> None:
    assert run(*args).exit_code == 2


def test_purge_with_nothing_to_purge_never_widens_to_the_whole_zone(closed_url: str) -> None:
    result = run("purge", "3", env={"PULLZONE_API_URL": closed_url})
    assert result.exit_code == 2
    assert "nothing to purge" in said(result.stderr)
    assert "cannot reach" not in result.output


def test_purge_all_does_not_mix_with_paths_or_tags() -> None:
    assert run("purge", "3", "--all", "/a").exit_code == 2
    result = run("purge", "3", "--all", "--tag", "t")
    assert result.exit_code == 2
    assert "--all purges the whole zone" in said(result.stderr)


@pytest.mark.parametrize("path", ["a.png", "images/*", "ftp://h/a"])
def test_purge_paths_start_with_a_slash_or_are_urls(path: str) -> None:
    result = run("purge", "3", path)
    assert result.exit_code == 2
    assert "a path starts with / or *" in said(result.stderr)


def test_a_glob_starting_with_a_star_is_a_purge_file() -> None:
    from pullzone.cli.path_lists import listed_paths

    assert listed_paths("*.js\n/img/*/t.png\n") == [(1, "*.js"), (2, "/img/*/t.png")]


def test_purge_all_asks_first_and_stops_on_no(closed_url: str) -> None:
    result = run("purge", "3", "--all", env={"PULLZONE_API_URL": closed_url}, input="n\n")
    assert result.exit_code == 1
    assert "every cached object of zone 3" in result.output
    assert "cannot reach" not in result.output


def test_zone_delete_asks_first(closed_url: str) -> None:
    result = run("zones", "delete", "3", env={"PULLZONE_API_URL": closed_url}, input="")
    assert result.exit_code == 1
    assert "Delete zone 3" in result.output
    assert "cannot reach" not in result.output


def test_update_without_changes() -> None:
    result = run("zones", "update", "3")
    assert result.exit_code == 2
    assert "nothing to change" in said(result.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--origin", "o.example"], "http:// or https://"),
        (["--origin", "http://o", "--cache", "4 hours"], "invalid duration"),
        (["--origin", "http://o", "--expiry", "1x"], "invalid duration"),
        (["--origin", "http://o", "--usestale", "maybe"], "use Y or N"),
    ],
)
def test_create_with_bad_values(args: list[str], message: str) -> None:
    result = run("zones", "create", "--name", "n", *args)
    assert result.exit_code == 2
    assert message in said(result.stderr)


def test_bad_api_url() -> None:
    result = run("zones", "list", "--api-url", "ftp://h/v2")
    assert result.exit_code == 2
    assert "http:// or https://" in said(result.stderr)
    assert run("zones", "list", env={"PULLZONE_API_URL": "nope"}).exit_code == 2


# --- serve ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:4222", "127.0.0.1:4222", "nats://h/x", ","])
def test_cluster_urls_are_nats_urls(url: str) -> None:
    result = run("serve", "--cluster", url, "--node-id", "n1")
    assert result.exit_code == 2
    assert "nats://HOST" in said(result.stderr)


def test_node_ids_are_names() -> None:
    result = run("serve", "--cluster", "nats://127.0.0.1:4222", "--node-id", "a b")
    assert result.exit_code == 2
    assert "letters, digits" in said(result.stderr)


def test_an_unreachable_cluster_is_a_clear_error(tmp_path: Path, closed_url: str) -> None:
    port = closed_url.split(":")[2].split("/")[0]
    result = run(
        "serve",
        "--data-dir", str(tmp_path / "data"),
        "--edge", f"127.0.0.1:{port}",  # free: nothing listens there
        "--api", f"127.0.0.2:{port}",
        env={"PULLZONE_NATS_URL": f"nats://127.0.0.1:{port}", "PULLZONE_NODE_ID": "n1"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "cannot join the cluster" in said(result.stderr)


def test_a_role_needs_a_cluster() -> None:
    result = run("serve", "--role", "edge")
    assert result.exit_code == 2
    assert "needs --cluster" in said(result.stderr)
    assert run("serve", "--role", "nonsense").exit_code == 2


@pytest.mark.parametrize("size", ["10XB", "big", "-1GiB", "0", ""])
def test_bad_max_cache_size(size: str) -> None:
    result = run("serve", "--max-cache-size", size)
    assert result.exit_code == 2
    assert "--max-cache-size" in said(result.stderr)


def test_bad_max_cache_size_from_the_environment() -> None:
    result = run("serve", env={"PULLZONE_MAX_CACHE_SIZE": "lots"})
    assert result.exit_code == 2
    assert "invalid size 'lots'" in said(result.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["--edge", "127.0.0.1:http"],
        ["--edge", "127.0.0.1:70000"],
        ["--api", "127.0.0.1:0"],
        ["--api", "127.0.0.1:8080"],
        ["--edge", "0.0.0.0:9000", "--api", "127.0.0.1:9000"],
        ["--workers", "0"],
        ["--workers", "many"],
        ["--origin-timeout", "0"],
        ["--origin-timeout", "soon"],
        ["--edge-domain", "http://cdn.example"],
        ["--edge-domain", ""],
    ],
)
def test_bad_serve_flags(args: list[str]) -> None:
    assert run("serve", *args).exit_code == 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PULLZONE_EDGE": "127.0.0.1:http"}, "--edge"),
        ({"PULLZONE_API": "127.0.0.1:0"}, "--api"),
        ({"PULLZONE_EDGE": ":9000", "PULLZONE_API": "0.0.0.0:9000"}, "cannot both listen"),
        ({"PULLZONE_WORKERS": "0"}, "--workers"),
        ({"PULLZONE_ORIGIN_TIMEOUT": "soon"}, "--origin-timeout"),
        ({"PULLZONE_EDGE_DOMAIN": "http://cdn.example"}, "--edge-domain"),
        ({"PULLZONE_ROLE": "edge"}, "needs --cluster"),
    ],
)
def test_bad_serve_settings_from_the_environment(env: dict[str, str], message: str) -> None:
    result = run("serve", env=env)
    assert result.exit_code == 2
    assert message in said(result.stderr)


def test_data_dir_is_a_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.touch()
    assert run("serve", "--data-dir", str(a_file)).exit_code == 2
    result = run("serve", env={"PULLZONE_DATA_DIR": str(a_file)})
    assert result.exit_code == 2
    assert "is a file" in said(result.stderr)


# --- demo -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["--edge", "nope:port"], ["--edge", ":9000", "--api", "0.0.0.0:9000"]]
)
def test_bad_demo_flags(args: list[str]) -> None:
    assert run("demo", *args).exit_code == 2


# --- the API cannot be reached: exit 1 ------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["zones", "list"],
        ["zones", "show", "3"],
        ["zones", "show", "my-alias"],
        ["zones", "create", "--name", "n", "--origin", "http://o.example"],
        ["zones", "update", "3", "--cache", "1h"],
        ["zones", "delete", "3", "--yes"],
        ["purge", "3", "/a.png"],
        ["purge", "3", "--tag", "t"],
        ["purge", "3", "--all", "--yes"],
        ["zones", "list", "--json"],
    ],
)
def test_unreachable_api(args: list[str], closed_url: str) -> None:
    result = run(*args, env={"PULLZONE_API_URL": closed_url})
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"error: cannot reach the API at {closed_url}: " in result.stderr
    assert "PULLZONE_API_URL" in result.stderr


def test_api_url_option_wins_over_the_environment(closed_url: str) -> None:
    env = {"PULLZONE_API_URL": "http://127.0.0.1:1/v2"}
    result = run("zones", "list", "--api-url", closed_url, env=env)
    assert result.exit_code == 1
    assert f"cannot reach the API at {closed_url}" in result.stderr
    result = run("--api-url", closed_url, "zones", "list", env=env)
    assert f"cannot reach the API at {closed_url}" in result.stderr


def test_unreachable_api_is_tried_again_as_asked(closed_url: str) -> None:
    result = run("--retries", "2", "zones", "list", env={"PULLZONE_API_URL": closed_url})
    assert result.exit_code == 1
    assert "(3 attempts)" in said(result.stderr)
    result = run("zones", "list", env={"PULLZONE_API_URL": closed_url, "PULLZONE_API_RETRIES": "1"})
    assert "(2 attempts)" in said(result.stderr)


@pytest.mark.parametrize(
    "args", [["--retries", "-1"], ["--retries", "many"], ["--timeout", "0"], ["--timeout", "x"]]
)
def test_bad_retries_or_timeout(args: list[str]) -> None:
    assert run(*args, "zones", "list").exit_code == 2


# --- shell completion -------------------------------------------------------------------------


def complete(words: str) -> str:
    env = {"_PULLZONE_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    return runner.invoke(app, [], prog_name="pullzone", env=env).output


def test_completion_is_offered() -> None:
    help_text = said(run("--help").output)
    assert "--install-completion" in help_text and "--show-completion" in help_text
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="pullzone")
    assert script.exit_code == 0
    assert "_PULLZONE_COMPLETE=complete_bash" in script.output


def test_completion_completes_commands_and_options() -> None:
    assert complete("pullzone zo").split() == ["zones"]
    zones_commands = ["list", "show", "create", "update", "set", "ssl", "delete"]
    assert complete("pullzone zones ").split() == zones_commands
    assert complete("pullzone purge 3 --from").split() == ["--from-file"]


def test_completion_installs(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SHELL": "/bin/bash"}
    result = runner.invoke(app, ["--install-completion", "bash"], prog_name="pullzone", env=env)
    assert result.exit_code == 0, result.output
    assert "_PULLZONE_COMPLETE" in (tmp_path / ".bash_completions" / "pullzone.sh").read_text()
