"""An independent JOSE library (joserfc) and we agree on our JWS profile, both ways."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.errors import BadSignatureError, ExceededSizeError
from joserfc.jwk import ECKey, RSAKey

from exchange._clock import FrozenClock
from exchange.codec.json import encode_json
from exchange.envelope.model import Envelope
from exchange.exceptions import SignatureInvalid
from exchange.pki.authority import KeyType
from exchange.pki.credentials import Credentials
from exchange.signing import WireFormat, seal, unseal
from exchange.signing.jws.profile import CONTENT_TYPE
from exchange.testing import ThrowawayPKI, make_envelope

pytestmark = pytest.mark.interop


def registry(alg: str) -> jws.JWSRegistry:
    """joserfc's registry for our profile: one algorithm, limits that fit an x5c header.

    The defaults (512-byte protected header, 128,000-byte payload) are too small for a
    certificate in ``x5c`` and for our 1 MiB envelopes.
    """
    result = jws.JWSRegistry(algorithms=[alg])
    result.max_header_length = 16 * 1024
    result.max_payload_length = 2 * 1024 * 1024
    return result


def public_jwk(credentials: Credentials) -> ECKey | RSAKey:
    """The signer's public key as a JWK, read from its certificate's PEM public key."""
    pem = credentials.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if credentials.algorithm.value == "ES256":
        return ECKey.import_key(pem)
    return RSAKey.import_key(pem)


def private_jwk(credentials: Credentials) -> ECKey | RSAKey:
    """The signer's private key as a JWK."""
    pem = credentials.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if credentials.algorithm.value == "ES256":
        return ECKey.import_key(pem)
    return RSAKey.import_key(pem)


@pytest.fixture(params=[KeyType.EC, KeyType.RSA], ids=["ES256", "RS256"])
def credentials(request: pytest.FixtureRequest, fresh_pki: ThrowawayPKI) -> Credentials:
    """single-center's credentials, EC or RSA."""
    key_type: KeyType = request.param
    if key_type is KeyType.EC:
        return fresh_pki.credentials("single-center")
    return fresh_pki.issue("single-center", KeyType.RSA)


def test_joserfc_verifies_our_jws(credentials: Credentials, clock: FrozenClock) -> None:
    """joserfc accepts the JWS seal() writes and reads back the envelope's JSON bytes."""
    envelope = make_envelope(clock)
    raw = seal(envelope, credentials, WireFormat.JSON)
    alg = credentials.algorithm.value
    result = jws.deserialize_json(json.loads(raw), public_jwk(credentials), registry=registry(alg))
    assert result.payload == encode_json(envelope)
    header: dict[str, Any] = dict(result.member.protected or {})
    assert not result.member.header
    assert header["alg"] == alg
    assert header["cty"] == CONTENT_TYPE
    assert base64.b64decode(header["x5c"][0]) == credentials.certificate_der


def test_joserfc_default_header_limit_is_too_small(
    credentials: Credentials, clock: FrozenClock
) -> None:
    """The pitfall DESIGN.md records: joserfc's default 512-byte header limit refuses x5c."""
    raw = seal(make_envelope(clock), credentials, WireFormat.JSON)
    assert len(json.loads(raw)["protected"]) > 512
    with pytest.raises(ExceededSizeError):
        jws.deserialize_json(
            json.loads(raw), public_jwk(credentials), algorithms=[credentials.algorithm.value]
        )


def test_joserfc_rejects_our_jws_tampered(credentials: Credentials, clock: FrozenClock) -> None:
    """joserfc and we both refuse the same JWS once its payload is swapped."""
    envelope = make_envelope(clock)
    members = json.loads(seal(envelope, credentials, WireFormat.JSON))
    other = json.loads(seal(make_envelope(clock), credentials, WireFormat.JSON))
    members["payload"] = other["payload"]
    with pytest.raises(BadSignatureError):
        jws.deserialize_json(
            members, public_jwk(credentials), registry=registry(credentials.algorithm.value)
        )


def joserfc_seal(envelope: Envelope, credentials: Credentials) -> bytes:
    """A flattened JWS written by joserfc over our envelope JSON, the certificate in x5c."""
    alg = credentials.algorithm.value
    member: jws.HeaderDict = {
        "protected": {
            "alg": alg,
            "cty": CONTENT_TYPE,
            "x5c": [base64.b64encode(credentials.certificate_der).decode("ascii")],
        }
    }
    flattened = jws.serialize_json(
        member, encode_json(envelope), private_jwk(credentials), registry=registry(alg)
    )
    return json.dumps(dict(flattened)).encode()


def test_we_verify_joserfc_jws(
    credentials: Credentials, fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """unseal() accepts a JWS joserfc produced and returns exactly the envelope signed."""
    envelope = make_envelope(clock)
    raw = joserfc_seal(envelope, credentials)
    assert set(json.loads(raw)) == {"protected", "payload", "signature"}
    verified = unseal(raw, fresh_pki.trust(), clock=clock)
    assert verified.envelope == envelope
    assert verified.raw == raw
    assert verified.format is WireFormat.JSON
    assert verified.signer.party == "single-center"


def test_we_refuse_joserfc_jws_tampered(
    credentials: Credentials, fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """A joserfc JWS whose signature was altered raises SignatureInvalid, signature-invalid."""
    members = json.loads(joserfc_seal(make_envelope(clock), credentials))
    other = json.loads(joserfc_seal(make_envelope(clock), credentials))
    members["signature"] = other["signature"]
    with pytest.raises(SignatureInvalid) as caught:
        unseal(json.dumps(members).encode(), fresh_pki.trust(), clock=clock)
    assert caught.value.code == "signature-invalid"
