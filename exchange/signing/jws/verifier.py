"""Verify a JSON envelope: a flattened JWS under our profile, signer checked in the trust store."""

from __future__ import annotations

from dataclasses import dataclass
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
    CONTENT_TYPES,
    DOCUMENT_TYPES,
    HEADER_PARAMETERS,
    MEMBERS,
    X5C_LENGTH,
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
    header = read_header(jws["protected"])
    header.expect(None)
    check_signature(jws, header.algorithm, header.certificate)
    signer = trust.check(header.certificate, at)
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
    if not all(isinstance(jws[member], str) and jws[member].isascii() for member in MEMBERS):
        raise Malformed("JWS members must be strings of base64url (ASCII)")
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


@dataclass(frozen=True, slots=True)
class Header:
    """A protected header that passed the profile: every member present and of its type."""

    algorithm: Algorithm
    certificate: x509.Certificate
    typ: str | None
    cty: str

    def expect(self, typ: str | None) -> None:
        """The header is of the document kind ``typ`` (None: an envelope), cty included.

        Raises:
            WrongDocumentType (wrong-document-type): another ``typ`` or ``cty``.
        """
        if self.typ != typ:
            wanted = f"a signed {typ} document" if typ else "an envelope (no typ)"
            raise WrongDocumentType(f"expected {wanted}, got typ {self.typ!r}")
        if self.cty != CONTENT_TYPES[typ]:
            raise WrongDocumentType(f"cty {self.cty!r} is not {CONTENT_TYPES[typ]!r}")


@lru_cache(maxsize=256)
def read_header(protected: str) -> Header:
    """The protected header's algorithm, signer certificate, ``typ`` and ``cty``.

    Only members the profile names, each of the JSON type it names: what is not named is
    refused, and no later check ever meets a list where it expects a string.

    Raises:
        Malformed (malformed): not a JSON object, or a member of the wrong type.
        UnsupportedAlgorithm (unsupported-algorithm): a member or algorithm off the profile.
        SignatureInvalid (signature-invalid): x5c is not exactly one certificate.
        WrongDocumentType (wrong-document-type): ``typ`` or ``cty`` of no known document.
        CertificateUnknown (certificate-unknown): the certificate cannot be loaded.
    """
    # Cached: a signer sends the same protected header (alg, cty, x5c) with every message.
    header = loads_strict(b64url.decode(protected, "protected header"))
    if not isinstance(header, dict):
        raise Malformed("the protected header is not a JSON object")
    unknown = set(header) - HEADER_PARAMETERS
    if unknown:
        raise UnsupportedAlgorithm(f"header parameters not allowed: {', '.join(sorted(unknown))}")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise UnsupportedAlgorithm(f"JWS algorithm {_shown(alg)} is not allowed")
    chain = header.get("x5c")
    if not isinstance(chain, list) or len(chain) != X5C_LENGTH or not isinstance(chain[0], str):
        raise SignatureInvalid("x5c must be a list of exactly one base64 string: the signer")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ not in DOCUMENT_TYPES):
        raise WrongDocumentType(f"typ {_shown(typ)} names no document of this exchange")
    cty = header.get("cty")
    if not isinstance(cty, str):
        raise WrongDocumentType(f"cty {_shown(cty)} is not a content type of this exchange")
    return Header(ALGORITHMS[alg], load_certificate(b64decode_strict(chain[0], "x5c")), typ, cty)


def _shown(value: object) -> str:
    # What the attacker sent, short: messages go to logs and the audit trail.
    return repr(value)[:80]
