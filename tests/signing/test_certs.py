"""The signer certificate's key: only the kinds the profiles allow get through."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from exchange.exceptions import CertificateUnknown, UnsupportedAlgorithm
from exchange.signing._certs import load_certificate, public_key_of
from exchange.testing import ThrowawayPKI


def _self_signed(key: object, algorithm: hashes.HashAlgorithm | None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm)  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (ed25519.Ed25519PrivateKey.generate(), None),
        (ed448.Ed448PrivateKey.generate(), None),
        (dsa.generate_private_key(2048), hashes.SHA256()),
    ],
    ids=["ed25519", "ed448", "dsa"],
)
def test_keys_outside_the_profile_are_unsupported(key: object, algorithm: object) -> None:
    cert = _self_signed(key, algorithm)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedAlgorithm):
        public_key_of(cert)


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)],
    ids=["p256", "rsa"],
)
def test_ec_and_rsa_keys_are_returned(key: object) -> None:
    cert = _self_signed(key, hashes.SHA256())
    assert public_key_of(cert).public_numbers() == key.public_key().public_numbers()  # type: ignore[attr-defined]


# --- certificates broken inside: named refusals, whatever cryptography raises ------------

_EC_PUBLIC_KEY = bytes.fromhex("06072A8648CE3D0201")  # the OID 1.2.840.10045.2.1, DER
_BASIC_CONSTRAINTS = bytes.fromhex("0603551d13")
_KEY_USAGE = bytes.fromhex("0603551d0f")


def _patched(der: bytes, old: bytes, new: bytes) -> bytes:
    assert der.count(old) == 1
    return der.replace(old, new)


def test_unknown_public_key_algorithm_is_unsupported(pki: ThrowawayPKI) -> None:
    """A key algorithm cryptography does not know (its own exception) is unsupported-algorithm."""
    der = pki.credentials("single-center").certificate_der
    cert = load_certificate(_patched(der, _EC_PUBLIC_KEY, _EC_PUBLIC_KEY[:-1] + b"\x09"))
    with pytest.raises(UnsupportedAlgorithm) as caught:
        public_key_of(cert)
    assert caught.value.code == "unsupported-algorithm"


def test_duplicate_extension_is_certificate_unknown(pki: ThrowawayPKI) -> None:
    """A certificate with an extension twice (DuplicateExtension, no ValueError) is refused."""
    der = pki.credentials("single-center").certificate_der
    with pytest.raises(CertificateUnknown) as caught:
        load_certificate(_patched(der, _BASIC_CONSTRAINTS, _KEY_USAGE))
    assert caught.value.code == "certificate-unknown"
    assert "cannot be read" in caught.value.message


def test_not_der_is_certificate_unknown() -> None:
    """Bytes that are no certificate are certificate-unknown."""
    with pytest.raises(CertificateUnknown):
        load_certificate(b"\x30\x03\x02\x01\x01")
