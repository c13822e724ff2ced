"""What an API key may do: its permissions, in 5centscdn's words and ours (docs/api.md,
Keys and scopes).

5centscdn's keys carry a set of CRUD permissions (`permission[]` of `/v2/account/api`):

| permission | may |
|---|---|
| `read` | read zones, their purge history and stats |
| `create` | create zones |
| `update` | change zones (`POST …/{zoneid}`, `/cache`, `/ssl`) and purge them |
| `delete` | delete zones |
| `purge` | purge zones (pullzone's: what a purge-only key of `/v2/keys` has besides `read`) |

Keys made by `/v2/keys` before keys had permissions are stored without them: a purge-only
key has `read` and `purge`, any other `read`, `update` and `delete`, which is what they
always meant. `update` includes purging, so `purge` is dropped beside it. Limiting a key to
some zones (`zones`) is orthogonal: it narrows where the permissions apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Permission = Literal["read", "create", "update", "delete", "purge"]

# In the order answers list them.
PERMISSIONS: tuple[Permission, ...] = ("read", "create", "update", "delete", "purge")
# 5centscdn's own four; the admin key shows these.
FIVECENTS_PERMISSIONS: tuple[Permission, ...] = ("read", "create", "update", "delete")

LEGACY_KEY: tuple[Permission, ...] = ("read", "update", "delete")
LEGACY_PURGE_ONLY: tuple[Permission, ...] = ("read", "purge")


def normalized(permissions: Iterable[str]) -> tuple[Permission, ...]:
    """Known permissions, each once, in PERMISSIONS order; `purge` dropped beside `update`
    (which includes it). Raises ValueError naming an unknown one."""
    given = set()
    for permission in permissions:
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        given.add(permission)
    if "update" in given:
        given.discard("purge")
    return tuple(p for p in PERMISSIONS if p in given)


def of_legacy(purge_only: bool) -> tuple[Permission, ...]:
    """The permissions of a key stored without any (made by `/v2/keys`)."""
    return LEGACY_PURGE_ONLY if purge_only else LEGACY_KEY


def allows(permissions: Iterable[str], action: str) -> bool:
    """Whether `permissions` let a key do `action` (one of PERMISSIONS) to a zone it
    reaches."""
    held = set(permissions)
    if action == "purge":
        return "purge" in held or "update" in held
    return action in held


def purge_only(permissions: Iterable[str]) -> bool:
    """Whether a key with `permissions` is what `/v2/keys` calls purge-only."""
    return tuple(normalized(permissions)) == LEGACY_PURGE_ONLY


def stored_purge_only(permissions: Iterable[str]) -> bool:
    """The `purge_only` column of a key with `permissions`: a release that predates
    permissions reads that column alone, so anything short of a full key (`read`,
    `update`, `delete`) is stored as purge-only there and never widens into one."""
    return not set(LEGACY_KEY) <= set(permissions)
