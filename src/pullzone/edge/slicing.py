"""Large objects in slices (the zone's `edge.lfo`): which slices a request needs, and what
a slice's origin response is. Pure; edge/slicer.py executes it.

A zone with `lfo` asks the origin for a missing object one slice at a time, by byte
range (RFC 9110 §14.2): `Range: bytes=0-2097151` first. An object that fits in one slice
comes back whole (a 206 for all its bytes, or a 200 from an origin that ignores ranges)
and is stored as any other, so objects up to SLICE_SIZE cost nothing more than one
Range field. A larger one is stored as 206 slices, each its own cache entry: fetched,
collapsed, revalidated and evicted on its own, all under the object's path, so that a
purge of the path or the zone removes every slice. A Range request on a cold object
then costs one origin round trip and one slice, wherever its offset.

Slices are combined only when they are of one representation (RFC 9111 §3.4): the same
complete length and the same strong validator. A response without a strong validator
is not sliced at all: nothing could tell its slices apart from another version's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from pullzone.cache.stored import ResponseHead
from pullzone.spec.headers import header_map
from pullzone.spec.ranges import parse_content_range

# 2 MiB: a cold seek waits for the bytes of its slice before the wanted ones, half a
# second at most from an origin serving 4 MiB/s; a 2 GiB object is 1024 index rows and
# as many origin requests when read whole. nginx's slice module is usually set to 1 MiB;
# 8 MiB would make that seek wait two seconds.
SLICE_SIZE: Final = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Slice:
    index: int
    size: int = SLICE_SIZE

    @property
    def first(self) -> int:
        return self.index * self.size

    @property
    def last(self) -> int:
        """The last byte position it asks for (the object may end before)."""
        return self.first + self.size - 1

    def range_field(self) -> tuple[str, str]:
        return ("Range", f"bytes={self.first}-{self.last}")

    def key(self, object_key: str) -> str:
        """The slice's cache key. Slice 0 is kept under the object's own key: a lookup of
        the object finds either the whole object or its first slice, whose
        Content-Range tells it is a slice and of how many bytes in all."""
        return object_key if self.index == 0 else f"{object_key}\x00slice {self.index}"


def slice_at(position: int, size: int = SLICE_SIZE) -> Slice:
    return Slice(position // size, size)


def slices_of(first: int, last: int, size: int = SLICE_SIZE) -> range:
    """The indexes of the slices that hold bytes [first, last]."""
    return range(first // size, last // size + 1)


def first_wanted(range_value: str | None) -> int:
    """The first byte position a Range field asks for, before the object's length is
    known (RFC 9110 §14.1.2): the smallest first-pos of its ranges. 0 when it asks for a
    suffix (its offset depends on the length: slice 0 tells it) or is not understood."""
    if range_value is None:
        return 0
    unit, eq, specs = range_value.partition("=")
    if not eq or unit.strip(" \t").lower() != "bytes":
        return 0
    firsts = []
    for spec in specs.split(","):
        first, dash, _ = spec.strip(" \t").partition("-")
        if not dash or not first.isascii() or not first.isdigit():
            return 0  # a suffix, or a specifier this is not
        firsts.append(int(first[:19]))
    return min(firsts, default=0)


@dataclass(frozen=True, slots=True)
class Identity:
    """What slices of one representation share (RFC 9111 §3.4)."""

    length: int  # the complete length
    validator: str  # the strong entity tag, else Last-Modified


def identity(head: ResponseHead) -> Identity | None:
    """The representation a stored slice (a 206) belongs to; None when it is no slice."""
    hmap = header_map(head.headers)
    part = parse_content_range(hmap.get("content-range"))
    validator = _strong_validator(hmap)
    if head.status != 206 or part is None or validator is None:
        return None
    return Identity(part[2], validator)


def _strong_validator(hmap: dict[str, str]) -> str | None:
    etag = hmap.get("etag")
    if etag is not None and not etag.startswith("W/"):
        return etag
    # RFC 9110 §8.8.2.2: a Last-Modified a second or more before the response's Date
    # is as good as strong for a resource that changes at most once a second; an origin
    # serving large static files changes them far less often than that.
    return hmap.get("last-modified")


def received(asked: Slice, head: ResponseHead) -> ResponseHead | None:
    """What a fill of slice `asked` stores of the origin's answer `head`, or None when it
    must not be used (then the request asks the origin on its own, uncached):

    - a 206 of exactly that slice's bytes (the object's last ones for its last slice),
      with a strong validator: the slice, as it is;
    - a 206 of the whole object, to the first slice's request: a 200 of it, stored as the
      object itself;
    - a 200 to the first slice's request (the origin ignores ranges): as it is;
    - any other status (404, 304, 5xx…): as it is, for the usual decisions;
    - None: a 200 to a later slice's request (its whole body for a part: not worth
      storing under that part), a 206 of other bytes, several ranges, or no validator.
    """
    if head.status == 200:
        return head if asked.index == 0 else None
    if head.status != 206:
        return head
    hmap = header_map(head.headers)
    part = parse_content_range(hmap.get("content-range"))
    if part is None or part[0] != asked.first:
        return None
    first, last, length = part
    if last != min(asked.last, length - 1) or head.length != last - first + 1:
        return None
    if first == 0 and last == length - 1:  # it fits in one slice: it is the object
        fields = tuple((n, v) for n, v in head.headers if n.lower() != "content-range")
        return dataclasses.replace(head, status=200, reason="OK", headers=fields)
    return head if _strong_validator(hmap) is not None else None
