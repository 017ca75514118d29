"""Signed documents that are not envelopes (audit batches, head acknowledgments) as JWS.

The same profile as envelopes (flattened serialization, allow-listed algorithms, the signer
in ``x5c``), plus a ``typ`` that names the kind of document: a batch cannot pass for an
acknowledgment, nor either for an envelope. The certificate is judged at the time the
document says it was signed, which only the caller knows how to read from the payload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from exchange.codec import b64url
from exchange.pki.trust import Signer, TrustStore
from exchange.signing._boundary import total
from exchange.signing.base import digest
from exchange.signing.jws.verifier import check_signature, flattened, read_header


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """A document whose signature and signer certificate passed every check."""

    payload: bytes  # exactly the bytes that were signed
    signer: Signer
    signed_at: datetime
    digest: str  # SHA-256 of the JWS as received


def verify_document(
    raw: bytes,
    trust: TrustStore,
    typ: str,
    signed_at: Callable[[bytes], datetime],
    *,
    max_size: int,
) -> SignedDocument:
    """Verify a flattened JWS of kind ``typ``; judge its signer at ``signed_at(payload)``.

    ``signed_at`` reads the signing time from the payload, which is read only after the
    signature over it verified; it raises ``Malformed`` when the payload is not readable.

    Raises:
        TooLarge, Malformed: not an acceptable JWS.
        WrongDocumentType (wrong-document-type): another ``typ`` or ``cty`` (or none).
        SignatureInvalid, UnsupportedAlgorithm: off-profile or wrong signature.
        TrustError subclasses: the signer certificate is not good at the signing time.
        VerifyFailed (verify-failed): anything unexpected (logged and counted).
    """

    def verify() -> SignedDocument:
        jws = flattened(raw, max_size=max_size)
        header = read_header(jws["protected"])
        header.expect(typ)
        check_signature(jws, header.algorithm, header.certificate)
        payload = b64url.decode(jws["payload"], "payload")
        at = signed_at(payload)
        return SignedDocument(payload, trust.check(header.certificate, at), at, digest(raw))

    return total(verify)
