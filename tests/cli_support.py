"""Running the CLI in-process for unit tests, and reading rich's output."""

from __future__ import annotations

import re

from typer.testing import CliRunner, Result

from pullzone.cli.main import app

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """`pullzone ARGS` in a terminal wide enough that rich does not wrap."""
    return runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})}, input=input)


def said(text: str) -> str:
    """Output with rich's boxes and line wrapping taken out, and ranges (1\u20137) as 1-7."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split()).replace("\u2013", "-")
