"""One entry of a purge's `files` (docs/purge.md, Files), parsed without I/O into the
PurgeFile the applier matches: a path, a `*` glob, or a URL on one of the zone's
hostnames or on its origin's host.

A plugin running on the origin's site purges with the site's own URLs, so a URL on the
origin's host names the path the edge asks the origin for: with an origin of
`https://o.example/static`, `https://o.example/static/a.js` is the zone's `/a.js`
(edge/origin.py `origin_url` builds the one from the other).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from pullzone.limits import MAX_PURGE_PATH
from pullzone.refusal import Reason, Refused
from pullzone.spec.uri import normalise, split_authority
from pullzone.zones.glob import MAX_STARS, literal_prefix
from pullzone.zones.model import Zone
from pullzone.zones.plan import PurgeFile


def looks_like_file(text: str) -> bool:
    """Whether `text` is spelled as a purge file at all (a path, a glob such as `*.js`, an
    http(s) URL), for the CLI's checks before anything is sent; the API checks the rest."""
    return text.startswith(("/", "*")) or text.lower().startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class FileHosts:
    """The hosts whose URLs a purge of one zone accepts (lower case, no port)."""

    zone: frozenset[str]  # the zone's fqdn and cnames: a URL's path is the path itself
    origin: frozenset[str]  # the origin URL's host and the zone's host_header
    origin_path: str  # the origin URL's path, normalised, without a trailing /

    @classmethod
    def of(cls, zone: Zone, edge_domain: str) -> FileHosts:
        parts = urlsplit(zone.origin)
        origin = {parts.hostname or ""}
        if zone.host_header:
            host, _ = split_authority(zone.host_header)
            origin.add(host.removeprefix("[").removesuffix("]").lower())
        origin.discard("")
        return cls(
            frozenset(zone.hostnames(edge_domain)),
            frozenset(origin),
            normalise(parts.path).rstrip("/"),
        )


def _short(text: str) -> str:
    return repr(text[:100])


def _url_target(text: str, zone: Zone, hosts: FileHosts) -> str:
    """The path and query a URL names on the zone."""
    try:
        parts = urlsplit(text)
    except ValueError:  # an unbalanced [ in the host: not a URL at all
        parts = SplitResult("", "", "", "", "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(
            Reason.INVALID,
            f"{_short(text)} is neither a path starting with / nor a URL of this zone",
        )
    if "*" in parts.netloc:
        raise Refused(
            Reason.INVALID,
            f"{_short(parts.netloc)}: a * may only be in the path, not in the host; "
            "purge each of the zone's hostnames by its path instead",
        )
    host = parts.hostname  # lower case, without the brackets of an IPv6 address
    query = f"?{parts.query}" if parts.query else ""
    if host in hosts.zone:
        return (parts.path or "/") + query
    if host not in hosts.origin:
        raise Refused(
            Reason.INVALID,
            f"{host!r} is neither a hostname of zone {zone.id} nor its origin's host: "
            "give a path such as /a.png, or a URL on one of them",
        )
    path = normalise(parts.path or "/")
    base = hosts.origin_path
    if base:
        if not path.startswith(base + "/"):
            raise Refused(
                Reason.INVALID,
                f"{_short(text)} is outside the zone's origin path {base}/: a URL on the "
                f"origin's host names what the zone serves only under {base}/",
            )
        path = path[len(base) :]
    return path + query


def parse_file(text: str, zone: Zone, hosts: FileHosts) -> PurgeFile:
    """What one entry of `files` purges, or Refused with why not."""
    if "\x00" in text:
        raise Refused(Reason.INVALID, "a file must not contain NUL bytes")
    if len(text) > MAX_PURGE_PATH:
        raise Refused(Reason.INVALID, f"a file is longer than {MAX_PURGE_PATH} characters")
    if text.startswith("*"):
        text = "/" + text  # every path starts with /: `*.js` and `/*.js` match the same
    elif not text.startswith("/"):
        text = _url_target(text, zone, hosts)
    # Spelled as the cache key spells it (RFC 3986 §6.2.2): `/%62` purges `/b`.
    path, sep, query = normalise(text).partition("?")
    segments = unquote(path).split("/")
    if ".." in segments or "." in segments:
        raise Refused(Reason.INVALID, f"{_short(text)} has a . or .. segment: give the path itself")
    if not path.startswith("/"):
        raise Refused(Reason.INVALID, f"{_short(text)} must start with /")
    if "**" in path:
        raise Refused(
            Reason.INVALID,
            f"{_short(text)} has **: write a single *, which already matches any characters, "
            "/ included",
        )
    stars = path.count("*")
    if stars > MAX_STARS:
        raise Refused(
            Reason.INVALID, f"{_short(text)} has {stars} *: a file may hold at most {MAX_STARS}"
        )
    if not zone.cache.querystring:
        sep, query = "", ""  # the zone ignores query strings: one object per path
    variant = query if sep else None  # a * in the query string is the character itself
    if stars == 0:
        return PurgeFile(path, variant, prefix=False)
    if stars == 1 and path.endswith("*"):
        return PurgeFile(path[:-1], variant, prefix=True)
    return PurgeFile(literal_prefix(path), variant, prefix=True, glob=path)
