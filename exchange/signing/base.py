"""What signing produces and verification returns, whatever the wire format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from exchange._hazmat.xml import Element
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
    that was verified, and ``digest`` its SHA-256. ``payload_document`` (XML only) is the
    payload element of the verified tree, so that the payload schema check reads the signed
    document itself rather than a re-encoding of what was decoded from it.
    """

    envelope: Envelope
    raw: bytes
    digest: str
    format: WireFormat
    signer: Signer
    # Derived from ``raw``, and lxml elements compare by identity: not part of equality.
    payload_document: Element | None = field(default=None, compare=False, repr=False)
