"""Signed URLs (the `securetoken` block, docs/zones.md "Blocks"): making a link, and
checking one. Pure functions of the block, the request target, the client's address and
the time; the edge runs `Check.verify` through its rules hook (edge/rules.py) and routes
by `strip` (edge/lifecycle.py), so the token never reaches the origin or the cache key.

A link carries `M` and `E` either in the query (`?md5=M&expires=E`) or as the path's
first segment (`/md5=M,expires=E/path`), where
`M = base64url(MD5(E + P + client address if keyip + " " + secret))` without padding
and P is the full path (policies F and Q) or its directory with a trailing `/` (D).
Every policy accepts either carrier; `sign` writes Q in the query, F and D in the path.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
from typing import NamedTuple
from urllib.parse import quote

from pullzone.spec.uri import normalise
from pullzone.zones.blocks import SecureToken

PATH_PREFIX = "/md5="
OK, WRONG, EXPIRED = 200, 403, 410
# Longer than any Unix time a link can mean (year 33658): longer is malformed, not parsed.
MAX_EXPIRES_DIGITS = 12
# The signatures remembered (Check.status): at most this many targets, of at most this
# length, as edge/lifecycle.py bounds its route memo.
MEMO_TARGETS = 4096
MEMO_TARGET_LIMIT = 512


class Carried(NamedTuple):
    """A target split into what routes (`target`, without the token) and the token."""

    target: str
    md5: str | None = None
    expires: str | None = None
    malformed: bool = False  # a token given twice, or a path segment not `md5=…,expires=…`


def origin_form(target: str) -> str:
    """The path and query of a request target, also of an absolute-form one (RFC 9112
    §3.2.2), which edge/lifecycle.py routes by its own authority."""
    if target.startswith("/"):
        return target
    rest = target.partition("://")[2]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def strip(target: str) -> Carried:
    """`target` (origin-form) without its token, and the token."""
    if "md5=" not in target and "expires=" not in target:
        return Carried(target)
    path, sep, query = target.partition("?")
    md5 = expires = None
    malformed = False
    if path.startswith(PATH_PREFIX):
        end = path.find("/", 1)
        segment, path = (path[1:], "") if end < 0 else (path[1:end], path[end:])
        first, comma, second = segment.partition(",")
        if not comma or not second.startswith("expires=") or not path:
            malformed = True
        md5, expires = first[4:], second[8:]
    if sep and ("md5=" in query or "expires=" in query):
        kept = []
        for pair in query.split("&"):
            name, _, value = pair.partition("=")
            if name == "md5" or name == "expires":
                if (md5 is not None and name == "md5") or (
                    expires is not None and name == "expires"
                ):
                    malformed = True
                if name == "md5":
                    md5 = value
                else:
                    expires = value
            else:
                kept.append(pair)
        query = "&".join(kept)
    return Carried(path + ("?" + query if query else ""), md5, expires, malformed)


def _signed_path(policy: str, path: str) -> str:
    return path[: path.rfind("/") + 1] if policy == "D" else path


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _m(signed: bytes) -> bytes:
    # An MD5 is 16 bytes: 22 base64 characters and `==`, which links leave out.
    raw = hashlib.md5(signed).digest()
    return binascii.b2a_base64(raw, newline=False)[:22].translate(_URLSAFE)


def digest(block: SecureToken, expires: int | str, path: str, client: str) -> str:
    """M for a link to `path` (without query) expiring at `expires`, for `client`."""
    address = client if block.keyip else ""
    text = f"{expires}{_signed_path(block.policy, path)}{address} {block.secret}"
    return _m(text.encode("utf-8", "surrogateescape")).decode("ascii")


def _dot_segment(path: str) -> bool:
    return any(part in (".", "..") for part in path.split("/"))


def sign(block: SecureToken, path: str, expires: int, ip: str | None = None) -> str:
    """The signed path (and query) of a link to `path` (`/dir/file?query`) that expires at
    the Unix time `expires`; `ip` is the client the link is for when the block says keyip.
    Raises ValueError for what no edge would accept."""
    if not path.startswith("/"):
        raise ValueError(f"the path must start with /, not {path!r}")
    if block.keyip and not ip:
        raise ValueError("this zone binds links to the client's address (keyip): give the IP")
    if ip:
        ip = str(ipaddress.ip_address(ip))  # one spelling: the edge's peer address
    # As a client sends it: what may not stand in a request target percent-encoded.
    target = normalise(quote(path, safe="/?&=%:@!$'()*+,;~"))
    carried = strip(target)
    if carried.md5 is not None or carried.expires is not None:
        raise ValueError("the path already carries md5= or expires=")
    bare, _, query = target.partition("?")
    if _dot_segment(bare):
        raise ValueError("the path must not hold . or .. segments")
    if expires < 0:
        raise ValueError(f"expires must be a Unix time, not {expires}")
    md5 = digest(block, expires, bare, ip or "")
    if block.policy == "Q":
        token = f"md5={md5}&expires={expires}"
        return f"{bare}?{query}&{token}" if query else f"{bare}?{token}"
    return f"/md5={md5},expires={expires}{target}"


class Check:
    """A zone's `securetoken` block, compiled once per zone change."""

    __slots__ = ("_memo", "block", "directory", "exempt", "keyip", "suffix")

    def __init__(self, block: SecureToken) -> None:
        self.block = block
        self.exempt = tuple(ipaddress.ip_network(n, strict=False) for n in block.ips)
        self.keyip = block.keyip
        self.directory = block.policy == "D"
        self.suffix = f" {block.secret}".encode("utf-8", "surrogateescape")
        # (target as received, address with keyip) → the link's expiry, or -1: wrong.
        self._memo: dict[tuple[str, str], int] = {}

    def is_exempt(self, client: str) -> bool:
        if not self.exempt:
            return False
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped  # a dual-stack listener's IPv4 client
        return any(address in network for network in self.exempt)

    def verify(self, target: str, client: str, now: float) -> tuple[int, str]:
        """(OK, WRONG or EXPIRED, the target without its token) for a normalised
        origin-form target (spec/uri.py `normalise`: what the edge routes by)."""
        carried = strip(target)
        if self.is_exempt(client):
            return OK, carried.target
        until = self._valid_until(carried, client)
        if until < 0:
            return WRONG, carried.target
        return (EXPIRED if until < now else OK), carried.target

    def status(self, received: str, client: str, now: float) -> int:
        """`verify`'s status for a request target as received, what the edge asks on
        every request. Whether the signature is right depends on the target (and the
        address, with keyip) alone, so it is remembered per target; the expiry is
        compared with `now` every time, so no remembered answer outlives its link."""
        if self.exempt and self.is_exempt(client):
            return OK
        key = (received, client if self.keyip else "")
        until = self._memo.get(key)
        if until is None:
            target = normalise(origin_form(received), "latin-1")
            until = self._valid_until(strip(target), client)
            if len(received) <= MEMO_TARGET_LIMIT:
                if len(self._memo) >= MEMO_TARGETS:
                    self._memo.clear()
                self._memo[key] = until
        if until < 0:
            return WRONG
        return EXPIRED if until < now else OK

    def _valid_until(self, carried: Carried, client: str) -> int:
        """The link's expiry when its signature is right, else -1."""
        md5, expires = carried.md5, carried.expires
        if carried.malformed or md5 is None or expires is None or not self.block.secret:
            return -1  # without a secret anyone could sign: the API refuses that too
        if not (expires.isascii() and expires.isdigit()) or len(expires) > MAX_EXPIRES_DIGITS:
            return -1
        path = carried.target.partition("?")[0]
        if self.directory:
            # The signed directory must be the one served: `/dir/..` is not in `/dir/`.
            if _dot_segment(path):
                return -1
            path = path[: path.rfind("/") + 1]
        address = ""
        if self.keyip:
            # Signed for the IPv4 address that a dual-stack listener maps.
            address = client[7:] if client.startswith("::ffff:") and "." in client else client
        expected = _m(f"{expires}{path}{address}".encode() + self.suffix)
        if not hmac.compare_digest(expected, md5.encode()):
            return -1
        return int(expires)
