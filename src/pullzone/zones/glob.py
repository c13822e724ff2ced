"""Globs in purged paths (docs/purge.md, Globs): `*` matches any run of characters, `/`
included, as Gcore's "purge by pattern" reads it; no other character is special.

The cache index matches a glob with SQLite's GLOB operator, restricted to the zone's rows
whose path starts with the glob's literal prefix (an index range scan of objects_path,
src/pullzone/cache/index.py). GLOB also gives `?` and `[` meanings (one character, a
class), so `sqlite_pattern` puts each of them in a class of its own: a path holding
them matches only itself there.
"""

from __future__ import annotations

GLOB_VERSION = 1  # the syntax above; a payload's glob of another version is not read
MAX_STARS = 16  # `*` in one file: each can multiply the work of matching one path


def literal_prefix(pattern: str) -> str:
    """What every path the glob matches starts with: the text before its first `*`."""
    return pattern.partition("*")[0]


def sqlite_pattern(pattern: str) -> str:
    """`pattern` as SQLite's GLOB reads it: its `*` a wildcard, every other character
    itself (`[` and `?` as the one-character classes `[[]` and `[?]`; `]` outside a class
    is already itself)."""
    return "".join(f"[{c}]" if c in "[?" else c for c in pattern)
