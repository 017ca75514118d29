"""The safe signing API: ``seal`` an envelope for the wire, ``unseal`` what arrives."""

from __future__ import annotations

from exchange._clock import SYSTEM_CLOCK, Clock
from exchange.envelope.model import Envelope
from exchange.exceptions import SenderMismatch, TooLarge
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing._boundary import total
from exchange.signing.base import VerifiedEnvelope, WireFormat, digest, sniff_format
from exchange.signing.jws.signer import sign_jws
from exchange.signing.jws.verifier import verify_jws
from exchange.signing.xmldsig.signer import sign_xml
from exchange.signing.xmldsig.verifier import verify_xml

DEFAULT_MAX_SIZE = 1024 * 1024

__all__ = ["VerifiedEnvelope", "WireFormat", "digest", "seal", "sniff_format", "unseal"]


def seal(
    envelope: Envelope, credentials: Credentials, wire_format: WireFormat = WireFormat.XML
) -> bytes:
    """Sign an envelope for the wire, as XML-DSig or JWS.

    Raises:
        SenderMismatch (sender-mismatch): the credentials belong to another party.
    """
    if credentials.party != envelope.sender:
        raise SenderMismatch(f"{credentials.party} cannot sign for {envelope.sender}")
    if wire_format is WireFormat.XML:
        return sign_xml(envelope, credentials)
    return sign_jws(envelope, credentials)


def unseal(
    raw: bytes,
    trust: TrustStore,
    *,
    clock: Clock = SYSTEM_CLOCK,
    max_size: int = DEFAULT_MAX_SIZE,
) -> VerifiedEnvelope:
    """Verify an envelope as it came off the wire; return what was signed, or raise.

    The certificate is judged at the clock's current time.

    Raises:
        ExchangeError subclasses, each with its code: too-large, malformed,
        signature-invalid, unsupported-algorithm, certificate-unknown,
        certificate-expired, certificate-not-yet-valid, certificate-revoked,
        certificate-usage, revocation-unknown, sender-mismatch, wrong-document-type;
        verify-failed for anything unexpected (logged with its stack trace and counted):
        for any bytes, the result is a verified envelope or an ``ExchangeError``.
    """

    def verify() -> VerifiedEnvelope:
        if len(raw) > max_size:
            raise TooLarge(f"{len(raw)} bytes is over the {max_size}-byte limit", size=len(raw))
        check = verify_xml if sniff_format(raw) is WireFormat.XML else verify_jws
        return check(raw, trust, clock.now(), max_size=max_size)

    return total(verify)
