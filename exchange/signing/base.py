"""What signing produces and verification returns, whatever the wire format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from exchange.envelope.model import Envelope
from exchange.exceptions import Malformed
from exchange.pki.trust import Signer


class WireFormat(StrEnum):
    """The two encodings of a signed envelope."""

    XML = "xml"
    JSON = "json"


def sniff_format(raw: bytes) -> WireFormat:
    """Tell XML from JSON by the first non-blank byte.

    Raises:
        Malformed (malformed): neither ``<`` nor ``{``.
    """
    head = raw.lstrip()[:1]
    if head == b"<":
        return WireFormat.XML
    if head == b"{":
        return WireFormat.JSON
    raise Malformed("neither an XML nor a JSON envelope")


def digest(raw: bytes) -> str:
    """SHA-256 (hex) of exact wire bytes: what answers bind as ``request_digest``."""
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    """An envelope whose signature and signer passed every check.

    ``envelope`` is read from exactly the bytes that were signed; ``raw`` is the wire form
    that was verified, and ``digest`` its SHA-256.
    """

    envelope: Envelope
    raw: bytes
    digest: str
    format: WireFormat
    signer: Signer
