"""Web cache deception: a dynamic page stored because its URL looks like a static file.

The attack: a victim is lured to `/account.php/x.css`; the origin ignores the suffix and
answers with the victim's account page, and a cache that trusts the `.css` (or, here, the
zone's default TTL, which applies to any response without freshness of its own) stores
it for the attacker to fetch. RFC 9111 lets a cache store such a response heuristically,
so the guard is policy, the one Cloudflare calls Cache Deception Armor: a response that
carries no explicit freshness is stored only when its Content-Type agrees with the
extension of the URL's last segment. An origin that says the response may be cached
(`public`, `max-age`, `s-maxage`, `Expires`) is believed whatever the URL looks like.

The same attack needs no disguise when the page is asked for with the victim's Cookie
and the zone's TTL would store it (`/account?cb=1`): `personal` keeps such a response
out of the cache unless it is a static asset or the origin gave it a lifetime.
"""

from __future__ import annotations

from pullzone.spec.headers import HeaderMap
from pullzone.spec.targeted import has_expires, response_directives

_IMAGE = ("image/",)
_FONT = ("font/", "application/font", "application/x-font", "application/vnd.ms-fontobject")
_MEDIA = ("video/", "audio/", "application/ogg", "application/mp4")
_JS = ("text/javascript", "application/javascript", "application/x-javascript",
       "application/ecmascript", "text/ecmascript")  # fmt: skip
_ARCHIVE = ("application/zip", "application/x-zip", "application/gzip", "application/x-gzip",
            "application/x-tar", "application/x-7z", "application/x-rar")  # fmt: skip

# Extension of a static file → media types (prefixes) its Content-Type may have.
EXPECTED_TYPES: dict[str, tuple[str, ...]] = {
    "css": ("text/css",),
    "js": _JS,
    "mjs": _JS,
    **dict.fromkeys(
        ("png", "jpg", "jpeg", "gif", "webp", "avif", "bmp", "ico", "svg", "tif", "tiff"), _IMAGE
    ),
    **dict.fromkeys(("woff", "woff2", "ttf", "otf", "eot"), _FONT),
    **dict.fromkeys(("mp4", "m4v", "m4a", "webm", "mp3", "ogg", "ogv", "oga", "wav"), _MEDIA),
    **dict.fromkeys(("zip", "gz", "tgz", "tar", "7z", "rar"), _ARCHIVE),
    "pdf": ("application/pdf",),
    "txt": ("text/plain",),
    "csv": ("text/csv", "text/plain"),
    "wasm": ("application/wasm",),
}
# Says nothing about what the bytes are; never the answer of a dynamic page framework.
_ANY = ("application/octet-stream", "binary/octet-stream")


def _has_explicit_freshness(resp: HeaderMap) -> bool:
    directives = response_directives(resp)
    cc = directives.cc
    return "public" in cc or "max-age" in cc or "s-maxage" in cc or has_expires(resp, directives)


_STATIC_TYPES = tuple(sorted({t for types in EXPECTED_TYPES.values() for t in types})) + _ANY


def personal(req: HeaderMap, resp: HeaderMap) -> bool:
    """True when a response must not be stored on the zone's TTL alone because it may be
    one visitor's page: the request carried a Cookie, the origin gave no explicit
    freshness, and the Content-Type is not a static asset's (images, styles, scripts,
    fonts, media, archives, downloads). Varnish's built-in rules store nothing asked for
    with a Cookie; this keeps assets cacheable for sites whose every request has one."""
    if "cookie" not in req or _has_explicit_freshness(resp):
        return False
    media = (resp.get("content-type") or "").partition(";")[0].strip().lower()
    return not (media and media.startswith(_STATIC_TYPES))


def disguised(path: str, resp: HeaderMap) -> bool:
    """True when a response for `path` must not be stored on the zone's TTL alone: the
    URL names a static file type, the Content-Type says otherwise, and the origin gave no
    explicit freshness."""
    segment = path.rpartition("/")[2]
    if "." not in segment:
        return False
    expected = EXPECTED_TYPES.get(segment.rpartition(".")[2].lower())
    if expected is None:
        return False
    media = (resp.get("content-type") or "").partition(";")[0].strip().lower()
    if not media or media.startswith(expected) or media in _ANY:
        return False
    return not _has_explicit_freshness(resp)
