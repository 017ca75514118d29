"""Raw signature primitives: bytes in, bytes out, no notion of trust.

ECDSA values are the fixed-length r||s that XML-DSig and JWS use, not DER.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from exchange.exceptions import SignatureInvalid, UnsupportedAlgorithm

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_P256_BYTES = 32
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SHA256 = hashes.SHA256()
_PKCS1 = padding.PKCS1v15()
_MIN_RSA_BITS = 2048


class Algorithm(StrEnum):
    """The signature algorithms our profiles allow, by their JOSE names."""

    ES256 = "ES256"
    RS256 = "RS256"


def algorithm_for(key: SigningKey | PublicKey) -> Algorithm:
    """The algorithm a key signs with.

    Raises:
        UnsupportedAlgorithm (unsupported-algorithm): not P-256 or RSA of at least 2048 bits.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise UnsupportedAlgorithm(f"EC curve {key.curve.name} is not allowed; use P-256")
        return Algorithm.ES256
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise UnsupportedAlgorithm(f"RSA key of {key.key_size} bits is too short")
        return Algorithm.RS256
    raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not allowed")


def sign(key: SigningKey, data: bytes) -> bytes:
    """Sign ``data`` with SHA-256 and the key's algorithm."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, _ECDSA_SHA256))
        return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    return key.sign(data, _PKCS1, _SHA256)


def verify(key: PublicKey, algorithm: Algorithm, signature: bytes, data: bytes) -> None:
    """Check a signature, or raise.

    Raises:
        UnsupportedAlgorithm (unsupported-algorithm): the key does not fit ``algorithm``.
        SignatureInvalid (signature-invalid): the signature does not match ``data``.
    """
    if algorithm_for(key) is not algorithm:
        raise UnsupportedAlgorithm(f"{algorithm} does not fit the certificate's key")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 2 * _P256_BYTES:
                raise SignatureInvalid("ECDSA signature is not 64 bytes of r||s")
            r = int.from_bytes(signature[:_P256_BYTES], "big")
            s = int.from_bytes(signature[_P256_BYTES:], "big")
            key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        else:
            key.verify(signature, data, _PKCS1, _SHA256)
    except InvalidSignature:
        raise SignatureInvalid("signature does not match the signed data") from None
