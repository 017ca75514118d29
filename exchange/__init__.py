"""Kazan inter-agency exchange: signed envelopes between city departments."""

from exchange._clock import Clock, FrozenClock, SystemClock
from exchange.envelope import Attachment, Envelope, Fault, Kind, ServiceRef
from exchange.exceptions import ExchangeError
from exchange.pki import CertificateAuthority, Credentials, Signer, TrustStore
from exchange.signing import VerifiedEnvelope, WireFormat, seal, unseal

__all__ = [
    "Attachment",
    "CertificateAuthority",
    "Clock",
    "Credentials",
    "Envelope",
    "ExchangeError",
    "Fault",
    "FrozenClock",
    "Kind",
    "ServiceRef",
    "Signer",
    "SystemClock",
    "TrustStore",
    "VerifiedEnvelope",
    "WireFormat",
    "seal",
    "unseal",
]
