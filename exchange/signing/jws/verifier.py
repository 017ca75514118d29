"""Verify a JSON envelope: a flattened JWS under our profile, signer checked in the trust store."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from cryptography import x509

from exchange._hazmat import signature
from exchange._hazmat.signature import Algorithm
from exchange.codec import b64url
from exchange.codec.json import decode_json, loads_strict
from exchange.exceptions import (
    Malformed,
    SenderMismatch,
    SignatureInvalid,
    TooLarge,
    UnsupportedAlgorithm,
    WrongDocumentType,
)
from exchange.pki.trust import TrustStore
from exchange.signing._certs import b64decode_strict, load_certificate, public_key_of
from exchange.signing.base import VerifiedEnvelope, WireFormat, digest
from exchange.signing.jws.profile import (
    ALGORITHMS,
    DOCUMENT_TYPES,
    HEADER_PARAMETERS,
    MAX_CHAIN,
    MEMBERS,
)


def verify_jws(raw: bytes, trust: TrustStore, at: datetime, *, max_size: int) -> VerifiedEnvelope:
    """Verify a flattened JWS envelope; return exactly the envelope that was signed.

    Raises:
        TooLarge, Malformed: not an acceptable JWS or envelope.
        SignatureInvalid, UnsupportedAlgorithm: off-profile or wrong signature.
        TrustError subclasses: the signer certificate is not good at ``at``.
        SenderMismatch (sender-mismatch): signed by another party than the sender.
    """
    jws = flattened(raw, max_size=max_size)
    algorithm, cert, typ = read_header(jws["protected"])
    if typ in DOCUMENT_TYPES:
        raise WrongDocumentType(f"a signed {typ} document is not an envelope")
    check_signature(jws, algorithm, cert)
    signer = trust.check(cert, at)
    envelope = decode_json(b64url.decode(jws["payload"], "payload"))
    if signer.party != envelope.sender:
        raise SenderMismatch(
            f"signed by {signer.party}, but the envelope's sender is {envelope.sender}",
            serial=signer.serial,
        )
    return VerifiedEnvelope(envelope, raw, digest(raw), WireFormat.JSON, signer)


def flattened(raw: bytes, *, max_size: int) -> dict[str, str]:
    """Read a flattened JWS (not yet verified): its three members, each a string.

    Raises:
        TooLarge (too-large), Malformed (malformed).
    """
    if len(raw) > max_size:
        raise TooLarge(f"{len(raw)} bytes is over the {max_size}-byte limit", size=len(raw))
    jws = loads_strict(raw)
    if not isinstance(jws, dict) or set(jws) != MEMBERS:
        raise Malformed(
            "expected a flattened JWS: a JSON object of protected, payload and signature"
        )
    if not all(isinstance(jws[member], str) for member in MEMBERS):
        raise Malformed("JWS members must be strings")
    return jws


def check_signature(jws: dict[str, str], algorithm: Algorithm, cert: x509.Certificate) -> None:
    """The JWS signature holds for the certificate's key (not yet: is the certificate trusted).

    Raises:
        SignatureInvalid (signature-invalid), UnsupportedAlgorithm (unsupported-algorithm).
    """
    signature.verify(
        public_key_of(cert),
        algorithm,
        b64url.decode(jws["signature"], "signature"),
        f"{jws['protected']}.{jws['payload']}".encode("ascii"),
    )


@lru_cache(maxsize=256)
def read_header(protected: str) -> tuple[Algorithm, x509.Certificate, str | None]:
    """The protected header's algorithm, signer certificate and ``typ``, under our profile.

    Raises:
        Malformed (malformed), UnsupportedAlgorithm (unsupported-algorithm),
        SignatureInvalid (signature-invalid), CertificateUnknown (certificate-unknown).
    """
    # Cached: a signer sends the same protected header (alg, cty, x5c) with every message.
    header = loads_strict(b64url.decode(protected, "protected header"))
    if not isinstance(header, dict):
        raise Malformed("the protected header is not a JSON object")
    unknown = set(header) - HEADER_PARAMETERS
    if unknown:
        raise UnsupportedAlgorithm(f"header parameters not allowed: {', '.join(sorted(unknown))}")
    if header.get("alg") not in ALGORITHMS:
        raise UnsupportedAlgorithm(f"JWS algorithm {header.get('alg')!r} is not allowed")
    chain = header.get("x5c")
    if (
        not isinstance(chain, list)
        or not 1 <= len(chain) <= MAX_CHAIN
        or not all(isinstance(item, str) for item in chain)
    ):
        raise SignatureInvalid(f"x5c must list 1 to {MAX_CHAIN} certificates, signer first")
    typ = header.get("typ")
    if typ is not None and not isinstance(typ, str):
        raise Malformed("the JWS typ must be a string")
    return (
        ALGORITHMS[header["alg"]],
        load_certificate(b64decode_strict(chain[0], "x5c")),
        typ,
    )
