"""Decoding the signer certificate carried in a signature (KeyInfo or ``x5c``)."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography import exceptions as crypto_errors
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from exchange._hazmat.signature import PublicKey
from exchange.exceptions import CertificateUnknown, Malformed, UnsupportedAlgorithm


def b64decode_strict(text: str | None, what: str) -> bytes:
    """Standard base64, line breaks allowed (xmlsec1 wraps), nothing else.

    Raises:
        Malformed (malformed): not base64.
    """
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"{what} is not base64") from None


@lru_cache(maxsize=1024)
def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate (cached: the same signers sign again and again).

    Raises:
        CertificateUnknown (certificate-unknown): not a certificate.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        # The library parses names, extensions and algorithms lazily: touch them here, so a
        # broken one fails now, with a code, not later inside the trust checks.
        _ = (cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc)
        _ = (list(cert.extensions), cert.signature_hash_algorithm)
    except (ValueError, TypeError, crypto_errors.UnsupportedAlgorithm):
        raise CertificateUnknown("the signer certificate cannot be parsed") from None
    return cert


def public_key_of(cert: x509.Certificate) -> PublicKey:
    """The certificate's public key, if it is of a kind the profiles allow (EC or RSA).

    Raises:
        UnsupportedAlgorithm (unsupported-algorithm): any other key type (Ed25519, DSA, ...),
            or a key the library cannot load.
    """
    try:
        key = cert.public_key()
    # An unknown or broken SubjectPublicKeyInfo; an unknown key OID is the library's own
    # UnsupportedAlgorithm, not a ValueError.
    except (ValueError, TypeError, crypto_errors.UnsupportedAlgorithm) as exc:
        raise UnsupportedAlgorithm(f"the signer certificate's key cannot be used: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not allowed")
    return key
