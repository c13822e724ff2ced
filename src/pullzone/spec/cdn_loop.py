"""CDN-Loop (RFC 8586): how a CDN sees that a request it forwarded came back to it.

Each CDN a request passes appends its own cdn-info to the field, and one that finds
itself already listed is in a loop: a zone whose origin leads back to its own edge.
"""

from __future__ import annotations

from pullzone.spec.headers import split_list


def looped(value: str | None, cdn_id: str) -> bool:
    """Whether the CDN-Loop field `value` already lists `cdn_id` (RFC 8586 §2: cdn-info
    is the cdn-id, then optional `;` parameters; host names compare without case)."""
    if not value:
        return False
    wanted = cdn_id.lower()
    return any(
        member.partition(";")[0].strip(" \t").lower() == wanted for member in split_list(value)
    )
