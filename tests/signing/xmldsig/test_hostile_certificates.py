"""Certificates in KeyInfo that the library parses lazily: refused with a code, never a crash."""

from __future__ import annotations

import base64

import pytest

from exchange._clock import FrozenClock
from exchange.exceptions import CertificateUnknown, ExchangeError, UnsupportedAlgorithm
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing import seal, unseal
from exchange.testing import ThrowawayPKI, make_envelope

EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1
UNKNOWN_KEY_OID = bytes.fromhex("06072a8648ce3d0209")  # same length, no such key type


def with_certificate(sealed: bytes, der: bytes) -> bytes:
    """``sealed`` with the KeyInfo certificate replaced by ``der`` (signature left as is)."""
    start = sealed.index(b"<ds:X509Certificate>") + len(b"<ds:X509Certificate>")
    end = sealed.index(b"</ds:X509Certificate>")
    return sealed[:start] + base64.b64encode(der) + sealed[end:]


@pytest.fixture
def signer(pki: ThrowawayPKI) -> Credentials:
    """single-center's credentials in the session PKI."""
    return pki.credentials("single-center")


def refused(raw: bytes, trust: TrustStore, clock: FrozenClock) -> ExchangeError:
    with pytest.raises(ExchangeError) as info:
        unseal(raw, trust, clock=clock)
    return info.value


def test_unknown_public_key_type_is_unsupported_algorithm(
    signer: Credentials, trust: TrustStore, clock: FrozenClock
) -> None:
    """A key algorithm OID the library does not know: unsupported-algorithm, not its exception."""
    der = signer.certificate_der
    assert der.count(EC_PUBLIC_KEY_OID) == 1
    raw = with_certificate(
        seal(make_envelope(clock), signer), der.replace(EC_PUBLIC_KEY_OID, UNKNOWN_KEY_OID)
    )
    assert type(refused(raw, trust, clock)) is UnsupportedAlgorithm


def test_broken_subject_is_certificate_unknown(
    signer: Credentials, trust: TrustStore, clock: FrozenClock
) -> None:
    """A subject name that only fails when read: certificate-unknown, before any trust check."""
    der = signer.certificate_der
    common_name = b"\x0c\x0dsingle-center"  # UTF8String of 13 bytes
    assert der.count(common_name) == 1
    broken = der.replace(common_name, b"\x01\x0dsingle-center")  # a BOOLEAN of 13 bytes
    error = refused(with_certificate(seal(make_envelope(clock), signer), broken), trust, clock)
    assert type(error) is CertificateUnknown
    assert error.code == "certificate-unknown"
