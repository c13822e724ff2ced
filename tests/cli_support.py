"""Running the CLI in-process for unit tests, or as a real process for end-to-end ones, and
reading rich's output."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from typer.testing import CliRunner, Result

from pullzone.cli.main import app

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """`pullzone ARGS` in a terminal wide enough that rich does not wrap."""
    return runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})}, input=input)


def said(text: str) -> str:
    """Output with rich's boxes and line wrapping taken out, and ranges (1\u20137) as 1-7."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split()).replace("\u2013", "-")


def command(
    api_url: str, *args: str, key: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `pullzone ARGS` in a process of its own, talking to the API at `api_url`
    with `key` (no other PULLZONE_ setting from this environment): stdout and stderr are
    pipes, no terminal."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PULLZONE_")},
        "PULLZONE_API_URL": api_url,
        "PULLZONE_API_KEY": key,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "pullzone", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
    )
