"""What a fill (fills.py) gives back to the request that asked for it, for the lifecycle
(lifecycle.py) to deliver. Besides these, a fill answers the decisions `ServeStale` and
`Fail` (decisions.py) as they are."""

from __future__ import annotations

from dataclasses import dataclass

from pullzone.cache.bodies import FillReader
from pullzone.cache.stored import ResponseHead, StoredObject
from pullzone.edge.decisions import Fail, ServeStale
from pullzone.edge.entry import Entry
from pullzone.edge.labels import NotStored
from pullzone.edge.upstream import UpstreamResponse


class Handoff:
    """The origin response of a fill that stopped being stored, for the client that led
    the fill: it streams the rest from the origin once it has read the file's bytes."""

    def __init__(self) -> None:
        self._given: tuple[bytes, UpstreamResponse] | None = None
        self._open = True

    def give(self, chunk: bytes, response: UpstreamResponse) -> bool:
        """Hand on the response and the chunk read from it but not stored; False when the
        client has left (the caller then releases the response)."""
        if not self._open:
            return False
        self._given = (chunk, response)
        return True

    def take(self) -> tuple[bytes, UpstreamResponse] | None:
        given, self._given = self._given, None
        return given

    def close(self) -> None:
        """The client is done: nothing more is handed on; what was and is unused is freed."""
        self._open = False
        given = self.take()
        if given is not None:
            given[1].release()


@dataclass(slots=True)
class Fetched:
    """Read this fill: its head is known, its body arrives in `reader`."""

    reader: FillReader
    head: ResponseHead
    handoff: Handoff | None = None  # the leader's own client only
    follower: bool = False  # another request leads it: its leader may die mid-body


@dataclass(frozen=True, slots=True)
class Revalidated:
    """The origin confirmed the stored response (304) and its row is refreshed."""


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A 304 made the stored response unstorable: it is gone from the index; its body
    with the updated headers is this client's alone, and the body file is the caller's
    to remove once delivered."""

    obj: StoredObject
    generation: int  # the invalidation to publish (bus/signal.py), 0 when none


@dataclass(frozen=True, slots=True)
class Passed:
    """Not stored: the origin's response, for this client alone (None: this request
    follows a fill that will not be stored, and must ask the origin on its own)."""

    response: UpstreamResponse | None
    reason: NotStored | None = None


@dataclass(frozen=True, slots=True)
class Cached:
    """Another fill stored the object while this request was on its way: a HIT."""

    entry: Entry


@dataclass(frozen=True, slots=True)
class Whole:
    """A small response that came whole with its head (the usual miss): stored, unless
    the cache had no room, and answered from memory as a stored one is, but a MISS."""

    entry: Entry
    stored: bool = True


Outcome = Fetched | Revalidated | Withdrawn | Passed | Cached | Whole | ServeStale | Fail
