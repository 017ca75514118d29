"""Certificates: the admins' authority and the trust store every node verifies against."""

from exchange.pki.authority import (
    CertificateAuthority,
    IssuedCertificate,
    KeyType,
    RevocationReason,
)
from exchange.pki.credentials import Credentials
from exchange.pki.trust import Signer, TrustStore, party_of

__all__ = [
    "CertificateAuthority",
    "Credentials",
    "IssuedCertificate",
    "KeyType",
    "RevocationReason",
    "Signer",
    "TrustStore",
    "party_of",
]
