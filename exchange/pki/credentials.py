"""A party's signing identity: its private key and the certificate that names it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from exchange._hazmat.signature import Algorithm, SigningKey, algorithm_for
from exchange.exceptions import PKIError, PKIFileCorrupt
from exchange.pki._files import read_certificate


@dataclass(frozen=True)
class Credentials:
    """What a party signs with."""

    party: str
    key: SigningKey
    certificate: x509.Certificate

    @cached_property
    def algorithm(self) -> Algorithm:
        """The signature algorithm of the key."""
        return algorithm_for(self.key)

    @cached_property
    def certificate_der(self) -> bytes:
        """The certificate in DER, as carried in KeyInfo and ``x5c``."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @classmethod
    def load(cls, party: str, key_path: Path, cert_path: Path) -> Credentials:
        """Read a PEM key and certificate.

        Raises:
            PKIError (pki-error): unreadable, or the key does not match the certificate.
            PKIFileCorrupt (pki-file-corrupt): the key or certificate file is not valid PEM.
        """
        remedy = f"restore it from a backup, or have an admin run `exchange certs rotate {party}`"
        try:
            key_pem = key_path.read_bytes()
            cert = read_certificate(cert_path, remedy)
        except OSError as exc:
            raise PKIError(f"cannot read credentials of {party}: {exc}") from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except ValueError:
            raise PKIFileCorrupt(
                f"{key_path} is not a readable PEM private key (corrupt?); {remedy}",
                path=str(key_path),
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise PKIError(f"{key_path} is neither an EC nor an RSA key")
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            raise PKIError(f"{key_path} does not match {cert_path}")
        return cls(party, key, cert)
