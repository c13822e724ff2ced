"""The certificate record: what the API stores, the event log carries and the edge serves."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

REDACTED = "--- redacted ---"


@dataclass(frozen=True, slots=True)
class Certificate:
    id: int  # the sequence of the event that created it: never reused
    name: str
    crt: str  # PEM: the leaf certificate
    key: str  # PEM: its private key (never answered, never logged)
    cabundle: str  # PEM: the intermediates sent after the leaf ("" when none)
    domain: str  # the subject's common name, else the first DNS name
    sans: tuple[str, ...]  # the DNS names it is valid for, lower case (wildcards as `*.x`)
    valid_from: float  # notBefore, Unix seconds
    expiry: float  # notAfter, Unix seconds
    source: str = "upload"  # "upload", or "acme" for one the edge obtained itself
    created_at: str = ""
    updated_at: str = ""

    def chain_pem(self) -> str:
        """The leaf and its intermediates, as a TLS server sends them."""
        return (
            self.crt.rstrip("\n")
            + "\n"
            + (self.cabundle.rstrip("\n") + "\n" if self.cabundle else "")
        )

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict for control.db and the event log (the key included)."""
        record = asdict(self)
        record["sans"] = list(self.sans)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Certificate:
        data = dict(record)
        data["sans"] = tuple(data.get("sans", ()))
        return cls(**data)
