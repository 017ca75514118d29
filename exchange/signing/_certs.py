"""Decoding the signer certificate carried in a signature (KeyInfo or ``x5c``)."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm as CryptoUnsupported
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from exchange._hazmat.signature import PublicKey
from exchange.exceptions import CertificateUnknown, Malformed, UnsupportedAlgorithm

# What cryptography raises for a certificate it parsed but cannot read (not all ValueErrors).
_UNREADABLE = (
    ValueError,
    TypeError,
    CryptoUnsupported,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


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

    The parser is lazy: names, validity and extensions are read here, once, so that a
    certificate broken inside fails now with a name, not later as a library's exception.

    Raises:
        CertificateUnknown (certificate-unknown): not a certificate, or one whose names,
            validity, extensions or signature algorithm cannot be read.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateUnknown("the signer certificate cannot be parsed") from None
    try:
        _ = (cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc)
        _ = (cert.extensions, cert.signature_hash_algorithm, cert.serial_number)
    except _UNREADABLE as exc:
        raise CertificateUnknown(f"the signer certificate cannot be read: {exc}") from None
    return cert


def public_key_of(cert: x509.Certificate) -> PublicKey:
    """The certificate's public key, if it is of a kind the profiles allow (EC or RSA).

    Raises:
        UnsupportedAlgorithm (unsupported-algorithm): any other key type (Ed25519, DSA, ...),
            or a key the library cannot load.
    """
    try:
        key = cert.public_key()
    # An unknown or broken SubjectPublicKeyInfo (cryptography raises its own
    # UnsupportedAlgorithm, not a ValueError, for a key algorithm it does not know).
    except (ValueError, TypeError, CryptoUnsupported) as exc:
        raise UnsupportedAlgorithm(f"the signer certificate's key cannot be used: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not allowed")
    return key
