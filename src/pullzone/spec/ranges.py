"""Range requests and multipart/byteranges (RFC 9110 §14)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

UNSATISFIABLE: Final = "unsatisfiable"

# RFC 9110 §14.2: a server MAY ignore a Range header, and in particular one with many
# small or overlapping ranges, "since these are indications of either a broken client or
# a deliberate denial-of-service attack" (RFC 9110 §17.15). Such requests get a plain 200.
MAX_RANGES = 100
MAX_OVERLAP_FACTOR = 2  # requested bytes in total at most this many times the size

_OWS = " \t"
_HUGE = 1 << 62  # stands for positions too large to matter (beyond any size)


def _position(digits: str) -> int | None:
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    significant = digits.lstrip("0")
    if len(significant) > 18:  # also keeps int() clear of its 4300-digit limit
        return _HUGE
    return int(significant or "0")


def parse_range(
    value: str | None, size: int
) -> list[tuple[int, int]] | Literal["unsatisfiable"] | None:
    """The byte ranges to send for a Range header (RFC 9110 §14.1.2, §14.2).

    None: no header, not `bytes`, an invalid ranges-specifier, or abusive (see
    MAX_RANGES) — ignore the header and send the whole representation (200).
    "unsatisfiable": valid but no range is satisfiable (416, §15.5.17).
    Otherwise inclusive (first, last) positions within [0, size). Overlapping or adjacent
    ranges are coalesced and then come in ascending order (§14.2 allows that "regardless
    of the order"); when nothing coalesces the client's order is kept, as §14.6 asks.
    """
    if value is None:
        return None
    unit, eq, range_set = value.partition("=")
    # RFC 9110 §14.1: range units are case-insensitive.
    if not eq or unit.strip(_OWS).lower() != "bytes":
        return None
    ranges: list[tuple[int, int]] = []
    total = 0
    count = 0
    empty_suffix = False
    for member in range_set.split(","):
        spec = member.strip(_OWS)
        if not spec:
            continue  # RFC 9110 §5.6.1: empty list members are allowed and ignored
        count += 1
        if count > MAX_RANGES:
            return None
        first_text, dash, last_text = spec.partition("-")
        if not dash:
            return None
        if first_text:
            # int-range (§14.1.2): first-pos "-" [ last-pos ]
            first = _position(first_text)
            if first is None:
                return None
            if last_text:
                last = _position(last_text)
                if last is None or last < first:
                    return None  # §14.1.1: last-pos below first-pos is invalid
            else:
                last = _HUGE
            if first >= size:
                continue  # not satisfiable (§14.1.1)
            last = min(last, size - 1)
        else:
            # suffix-range (§14.1.2): "-" suffix-length, the last N bytes
            suffix = _position(last_text)
            if suffix is None:
                return None
            if suffix == 0:
                continue  # not satisfiable
            if size == 0:
                empty_suffix = True  # satisfiable, but by the whole (empty) body
                continue
            first, last = max(0, size - suffix), size - 1
        ranges.append((first, last))
        total += last - first + 1
    if count == 0:
        return None  # "bytes=" with no range-spec is invalid
    if not ranges:
        return None if empty_suffix else UNSATISFIABLE
    if total > MAX_OVERLAP_FACTOR * size:
        return None  # overlapping ranges that multiply the response: see above
    if len(ranges) == 1:
        return ranges
    ordered = sorted(ranges)
    merged = [ordered[0]]
    for first, last in ordered[1:]:
        prev_first, prev_last = merged[-1]
        if first <= prev_last + 1:
            if last > prev_last:
                merged[-1] = (prev_first, last)
        else:
            merged.append((first, last))
    return ranges if len(merged) == len(ranges) else merged


def content_range(first: int, last: int, size: int) -> str:
    """RFC 9110 §14.4: Content-Range of a satisfied range."""
    return f"bytes {first}-{last}/{size}"


def unsatisfiable_content_range(size: int) -> str:
    """RFC 9110 §14.4: Content-Range of a 416 response."""
    return f"bytes */{size}"


def multipart_parts(
    ranges: Sequence[tuple[int, int]], size: int, content_type: str | None, boundary: str
) -> tuple[list[bytes], bytes]:
    """The head of each body part of a multipart/byteranges body and its closing
    delimiter (RFC 9110 §14.6, RFC 2046 §5.1.1); the caller sends each head followed by
    that range's bytes, then the closing delimiter.

    The CRLF before each delimiter belongs to the delimiter (RFC 2046), so every part but
    the first starts with one, as does the closing delimiter. Without a Content-Type
    the parts carry none.
    """
    type_line = f"Content-Type: {content_type}\r\n" if content_type else ""
    heads: list[bytes] = []
    lead = ""
    for first, last in ranges:
        heads.append(
            f"{lead}--{boundary}\r\n{type_line}"
            f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n".encode("latin-1", "replace")
        )
        lead = "\r\n"
    closing = f"\r\n--{boundary}--\r\n".encode("latin-1", "replace")
    return heads, closing


def multipart_length(
    ranges: Sequence[tuple[int, int]], part_heads: Sequence[bytes], closing: bytes
) -> int:
    """Content-Length of the multipart/byteranges body built from multipart_parts."""
    body = sum(last - first + 1 for first, last in ranges)
    return body + sum(len(head) for head in part_heads) + len(closing)


def parse_content_range(value: str | None) -> tuple[int, int, int] | None:
    """(first, last, complete length) of a satisfied Content-Range (RFC 9110 §14.4), or
    None for anything else: no field, another unit, an unknown length (`*`), or
    positions that do not describe bytes of that length."""
    if value is None:
        return None
    unit, _, rest = value.strip(_OWS).partition(" ")
    span, slash, length_text = rest.strip(_OWS).partition("/")
    first_text, dash, last_text = span.partition("-")
    if unit.lower() != "bytes" or not slash or not dash:
        return None
    first, last, length = _position(first_text), _position(last_text), _position(length_text)
    if first is None or last is None or length is None or length >= _HUGE:
        return None
    if not first <= last < length:
        return None
    return first, last, length
