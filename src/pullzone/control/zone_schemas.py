"""What the zone routes accept (docs/zones.md): the create and update bodies, with every
5centscdn zone field pullzone has a meaning for.

Decisions where the contract is silent:

- Create needs `origin` and `alias` (or `name`, whose slug becomes the alias); `name`
  defaults to the alias.
- `cname` (5centscdn's update examples) is `cnames` under another name; both in one body
  must agree.
- The zone's own answer may be sent back whole: read-only fields (READ_ONLY, and each
  block's `active`, the cache block's derived seconds, `ssl.warning`) are ignored when
  they say what the zone's answer says and a 400 naming them when they do not.
  `hostHeader` answered as the origin's host (none set) and sent back unchanged stays unset.
- `optimize` is "http" (pullzone's zones are HTTP pull zones); any other value is a 400.
- A block pullzone stores but does not apply yet is refused when switched on, with a
  message naming it (NOT_APPLIED): never stored as on while the edge ignores it.
- eac, waf and edgerules (5centscdn features pullzone has no counterpart for) are accepted
  when off and not stored.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from pullzone.control.block_schemas import (
    BLOCK_INPUTS,
    BlockIn,
    BwLimitIn,
    DomainLockIn,
    EdgeIn,
    GeoBlockIn,
    IpAccessIn,
    OriginIpIn,
    SecureTokenIn,
    ShieldIn,
    UserAgentIn,
)
from pullzone.control.errors import BadRequest
from pullzone.control.schemas import (
    MAX_ALIAS,
    Alias,
    CacheIn,
    Cnames,
    Disabled,
    HostHeader,
    Name,
    Origin,
    SslIn,
    Strict,
    check_origin,
    on,
    short,
)
from pullzone.zones.model import Zone

# 5centscdn zone blocks pullzone has no counterpart for, and the fields inside each that
# switch the feature on ("Y", "1", true). A block is accepted when none of them is on.
UNSUPPORTED_BLOCKS: dict[str, tuple[str, ...]] = {
    "eac": ("enabled",),
    "waf": ("enabled",),
    "edgerules": ("enabled",),
}

# Switches pullzone stores and answers but does not apply at the edge (yet), each with
# what a user is told when switching it on.
NOT_APPLIED: dict[str, str] = {
    "edge.webp": "pullzone has no image conversion",
    "edge.pseudostreaming": "pullzone has no pseudo-streaming (?start=)",
    "edge.wp": "pullzone has no WordPress mode",
}

# Answer fields a body may carry back only unchanged.
READ_ONLY = (
    "id",
    "serviceid",
    "hashid",
    "type",
    "mode",
    "fqdn",
    "cnamesArr",
    "cnamesArrFqdn",
    "status",
    "created_at",
    "updated_at",
    "warnings",
)

_READ_ONLY_SCHEMA: dict[str, Any] = {
    "readOnly": True,
    "description": "Read-only: accepted when unchanged.",
}


def _optimize(value: object) -> object:
    text = value.strip().lower() if isinstance(value, str) else value
    if text != "http":
        raise ValueError(
            f"{short(value)} is not an optimization pullzone has: its zones are HTTP pull "
            'zones; send "http" or leave optimize out'
        )
    return text


def _method(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _backup(value: str) -> str:
    return check_origin(value) if value.strip() else ""


def _block_doc(name: str) -> str:
    return f"5centscdn's {name}: pullzone has no counterpart; accepted only when off."


def _same(given: object, current: object) -> bool:
    """Whether a value sent back says what the answer says (forms send text: "42" is 42)."""
    if isinstance(given, list) and isinstance(current, list):
        return [str(g) for g in given] == [str(c) for c in current]
    if given is None or current is None:
        return (given or "") == (current or "")
    return str(given) == str(current)


class ZoneUpdate(Strict):
    """Body of `POST …/{zoneid}`: the fields to change; blocks merge field-wise."""

    NOT_STORED: ClassVar[tuple[str, ...]] = tuple(UNSUPPORTED_BLOCKS)

    name: Name | None = None
    alias: Alias | None = None
    origin: Origin | None = None
    backup: Annotated[str, AfterValidator(_backup)] | None = Field(
        None, description='A second origin URL for when the first fails; "": none.'
    )
    hostHeader: HostHeader | None = None
    cnames: Cnames | None = None
    cname: Cnames | None = Field(None, description="5centscdn's name for `cnames`.")
    disabled: Disabled | None = None
    optimize: Annotated[Literal["http"], BeforeValidator(_optimize)] | None = Field(
        None, description='"http": the only kind of zone pullzone has.'
    )
    cache: CacheIn | None = None
    ssl: SslIn | None = None
    edge: EdgeIn | None = None
    securetoken: SecureTokenIn | None = None
    domainlock: DomainLockIn | None = None
    geoblock: GeoBlockIn | None = None
    ipaccess: IpAccessIn | None = None
    useragent: UserAgentIn | None = None
    bwlimit: BwLimitIn | None = None
    originip: OriginIpIn | None = None
    shield: ShieldIn | None = None
    eac: dict[str, Any] | None = Field(None, description=_block_doc("eac"))
    waf: dict[str, Any] | None = Field(None, description=_block_doc("waf"))
    edgerules: dict[str, Any] | None = Field(None, description=_block_doc("edgerules"))
    METHODS: ClassVar[tuple[str, ...]] = ("POST", "DELETE")
    method_override: Annotated[str | None, BeforeValidator(_method)] = Field(
        None,
        alias="_METHOD",
        description='5centscdn\'s method override: "POST", or "DELETE" to delete the zone '
        'instead ("PUT" or "POST" on create).',
        json_schema_extra={"enum": ["POST", "PUT", "DELETE"]},
    )
    id: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    serviceid: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    hashid: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    type: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    mode: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    fqdn: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    cnamesArr: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    cnamesArrFqdn: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    status: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    created_at: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    updated_at: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)
    warnings: Any = Field(None, json_schema_extra=_READ_ONLY_SCHEMA)

    @classmethod
    def nullable(cls) -> frozenset[str]:
        return frozenset(READ_ONLY)  # answers carry `"warnings": null`

    @field_validator("method_override")
    @classmethod
    def _method_fits(cls, value: str | None) -> str | None:
        if value is not None and value not in cls.METHODS:
            action = "creating" if "PUT" in cls.METHODS else "updating"
            raise ValueError(
                f"{short(value, 20)} does not fit {action} a zone: send "
                f"{' or '.join(cls.METHODS)}, or leave _METHOD out"
            )
        return value

    @field_validator(*UNSUPPORTED_BLOCKS)
    @classmethod
    def _switched_off(cls, block: dict[str, Any] | None, info: ValidationInfo) -> Any:
        name = info.field_name or "block"
        switched = [f for f in UNSUPPORTED_BLOCKS[name] if block and on(block.get(f))]
        if switched:
            fields = ", ".join(f"{name}.{f}" for f in switched)
            raise ValueError(
                f"pullzone has no counterpart for 5centscdn's {name} ({fields} is on): "
                f'send it with {switched[0]} "N" or leave {name} out'
            )
        return block

    @property
    def deletes(self) -> bool:
        return self.method_override == "DELETE"

    def check_read_only(self, current: dict[str, Any] | None) -> None:
        """A read-only field that differs from the zone's answer (`current`; None on
        create, where none may be sent) is a BadRequest naming it."""
        changed = [
            name
            for name in READ_ONLY
            if name in self.model_fields_set
            and (current is None or not _same(getattr(self, name), current.get(name)))
        ]
        if changed:
            raise BadRequest(
                f"{', '.join(changed)}: read-only (pullzone sets "
                f"{'it' if len(changed) == 1 else 'them'}); leave "
                f"{'it' if len(changed) == 1 else 'them'} out or send "
                f"{'it' if len(changed) == 1 else 'them'} unchanged"
            )

    def apply_to(self, zone: Zone, current: dict[str, Any] | None) -> Zone:
        """`zone` with the fields given here changed (id and timestamps untouched);
        `current` is the zone's answer, against which read-only fields are checked."""
        if self.deletes and self.model_fields_set - {"method_override"}:
            raise BadRequest('_METHOD "DELETE" deletes the zone: send it without other fields')
        self.check_read_only(current)
        cnames = self.cnames
        if self.cname is not None:
            if cnames is not None and cnames != self.cname:
                raise BadRequest("cname and cnames differ: cname is cnames' other name; send one")
            cnames = self.cname
        changes: dict[str, Any] = {}
        for field, target in (("name", "name"), ("alias", "alias"), ("origin", "origin")):
            if getattr(self, field) is not None:
                changes[target] = getattr(self, field)
        if self.backup is not None:
            changes["backup"] = self.backup
        answered_host = current.get("hostHeader") if current else None
        if self.hostHeader is not None and self.hostHeader != answered_host:
            changes["host_header"] = self.hostHeader
        if cnames is not None:
            changes["cnames"] = cnames
        if self.disabled is not None:
            changes["disabled"] = self.disabled == "1"
        if self.cache is not None:
            changes["cache"] = self.cache.apply_to(zone.cache)
        if self.ssl is not None:
            changes["ssl"] = self.ssl.apply_to(zone.ssl)
        for name in BLOCK_INPUTS:
            block: BlockIn | None = getattr(self, name)
            if block is not None:
                changes[name] = block.apply_to(getattr(zone, name), name)
        return zone.with_changes(**changes)


class ZoneCreate(ZoneUpdate):
    """Body of `POST …/new`: `origin` and `alias` (or `name`) are required."""

    origin: Origin
    METHODS: ClassVar[tuple[str, ...]] = ("POST", "PUT")  # 5centscdn's examples send PUT

    def draft(self) -> Zone:
        """The zone to store (id 0 until stored; alias the slug of the name if not given,
        name the alias if not given)."""
        if self.alias is None and self.name is None:
            raise BadRequest(
                "alias: required (the zone's DNS label, e.g. my-site); name is optional"
            )
        alias = self.alias or slug(self.name or "")
        zone = Zone(id=0, name=self.name or alias, alias=alias, origin=self.origin)
        return self.apply_to(zone, None)


def refuse_not_applied(zone: Zone) -> None:
    """A BadRequest naming each switch of `zone` that is on although the edge does not
    apply it (NOT_APPLIED)."""
    if zone.securetoken.enabled and not zone.securetoken.secret:  # anyone could sign
        raise BadRequest('securetoken.list: a secret is needed with securetoken "enabled": "Y"')
    on_now = []
    for switch in NOT_APPLIED:
        block, _, field = switch.partition(".")
        value = getattr(zone, block)
        if getattr(value, field) if field else value:
            on_now.append(switch)
    if on_now:
        reasons = "; ".join(f"{switch}: {NOT_APPLIED[switch]}" for switch in on_now)
        fixes = ", ".join(f'{s} ""' if s == "backup" else f'{s} "N"' for s in on_now)
        raise BadRequest(f"{reasons}. Send {fixes}, or leave it out (docs/zones.md, Blocks)")


def refuse_geoblock_without_db(zone: Zone, before: Zone | None, geoip_db: str | None) -> None:
    """A BadRequest when `zone` switches geoblock on (or changes it while on) and this node
    has no country database to apply it with."""
    if geoip_db or not zone.geoblock.enabled:
        return
    if before is not None and before.geoblock == zone.geoblock:
        return
    raise BadRequest(
        "geoblock.enabled: this node has no --geoip-db (a MaxMind GeoIP2/GeoLite2 Country "
        "database), so it knows no client's country. Start `pullzone serve --geoip-db FILE`, "
        'or send geoblock.enabled "N" (docs/zones.md, Blocks)'
    )


def slug(name: str) -> str:
    """A DNS label from a zone name: `My Site!` → `my-site`; `zone` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return text[:MAX_ALIAS].rstrip("-") or "zone"
