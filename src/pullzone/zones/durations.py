"""5centscdn duration strings (`30m`, `4h`, `1d`, `1M`) and byte sizes (`10GiB`)."""

from __future__ import annotations

import functools
import re

_UNITS = {
    "": 1,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 30 * 86400,
    "y": 365 * 86400,
}
_DURATION = re.compile(r"^([0-9]{1,9})([smhdwMy]?)$")

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


@functools.lru_cache(maxsize=256)  # read for every fill (CachePolicy.cache_secs): few spellings
def parse_duration(text: str) -> int:
    """Seconds in a 5centscdn duration; `""` and `"0"` mean none (0).

    Units: s, m (minutes), h, d, w, M (30 days), y (365 days); a bare number is seconds.
    Raises ValueError with a message meant for the API user.
    """
    if text == "":
        return 0
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit s, m, h, d, w, M or y "
            "(for example 30m, 4h, 1d)"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_size(text: str) -> int:
    """Bytes in a size such as `10GiB`, `500MB` or `1048576`."""
    match = _SIZE.match(text)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}: use a number with a unit such as 500MiB or 10GiB")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def size_text(nbytes: int) -> str:
    """`nbytes` in the largest binary unit that holds it exactly (`10GiB`, `512MiB`, `1000`):
    what `parse_size` reads back as `nbytes`."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if nbytes and nbytes % factor == 0:
            return f"{nbytes // factor}{unit}"
    return str(nbytes)
