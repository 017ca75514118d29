"""The JWS verifier: strict, profile-bound, and exact about what it returns."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from exchange._clock import FrozenClock
from exchange.envelope.model import Envelope
from exchange.exceptions import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUnknown,
    ExchangeError,
    Malformed,
    SenderMismatch,
    SignatureInvalid,
    TooLarge,
    UnsupportedAlgorithm,
    WrongDocumentType,
)
from exchange.pki.authority import KeyType
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing import VerifiedEnvelope, WireFormat, seal, unseal
from exchange.signing.jws.signer import sign_jws
from exchange.signing.jws.verifier import verify_jws
from exchange.testing import ThrowawayPKI, make_envelope

from ._forge import b64url, compact, forge, header_for, parts, respelled, unb64url

MAX_SIZE = 1024 * 1024
# A JSON object that is not exactly {protected, payload, signature}: the code says malformed
# (the brief said signature-invalid; either is defensible, both are refusals before any crypto).
OFF_PROFILE: tuple[type[ExchangeError], str] = (Malformed, "malformed")


@pytest.fixture
def envelope(clock: FrozenClock) -> Envelope:
    """A request from single-center to improvement, created at the frozen time."""
    return make_envelope(clock)


@pytest.fixture
def signer(pki: ThrowawayPKI) -> Credentials:
    """single-center's credentials in the session PKI."""
    return pki.credentials("single-center")


@pytest.fixture
def sealed(envelope: Envelope, signer: Credentials) -> bytes:
    """The envelope sealed as a JWS."""
    return seal(envelope, signer, WireFormat.JSON)


@pytest.fixture
def check(trust: TrustStore, clock: FrozenClock) -> Callable[[bytes], VerifiedEnvelope]:
    """unseal() against the session trust store at the frozen time."""

    def run(raw: bytes) -> VerifiedEnvelope:
        return unseal(raw, trust, clock=clock)

    return run


Check = Callable[[bytes], VerifiedEnvelope]


def refused(check: Check, raw: bytes, error: type[ExchangeError], code: str) -> ExchangeError:
    """Assert that ``raw`` is refused with exactly ``error`` and ``code``."""
    with pytest.raises(ExchangeError) as caught:
        check(raw)
    assert type(caught.value) is error, caught.value
    assert caught.value.code == code
    return caught.value


def rebuild(raw: bytes, **members: Any) -> bytes:
    """The JWS with some members replaced (None removes one)."""
    jws: dict[str, Any] = dict(parts(raw))
    for name, value in members.items():
        if value is None:
            jws.pop(name, None)
        else:
            jws[name] = value
    return json.dumps(jws).encode()


# --- the good case ----------------------------------------------------------------------


def test_round_trip(check: Check, sealed: bytes, envelope: Envelope) -> None:
    """A sealed JWS verifies to exactly the envelope signed, its raw bytes and their SHA-256."""
    verified = check(sealed)
    assert verified.envelope == envelope
    assert verified.raw == sealed
    assert verified.digest == hashlib.sha256(sealed).hexdigest()
    assert verified.format is WireFormat.JSON
    assert verified.signer.party == "single-center"


def test_verify_jws_directly(trust: TrustStore, sealed: bytes, clock: FrozenClock) -> None:
    """verify_jws gives the same result as unseal for a JSON envelope."""
    verified = verify_jws(sealed, trust, clock.now(), max_size=MAX_SIZE)
    assert verified.envelope == make_envelope_like(verified.envelope)
    assert verified.digest == hashlib.sha256(sealed).hexdigest()


def make_envelope_like(envelope: Envelope) -> Envelope:
    """A copy through model_validate (equality is by value)."""
    return Envelope.model_validate(envelope.model_dump())


def test_rsa_certificate_signs_rs256(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """An RSA certificate signs RS256, which the verifier accepts (no exception)."""
    credentials = fresh_pki.issue("single-center", KeyType.RSA)
    envelope = make_envelope(clock)
    raw = seal(envelope, credentials, WireFormat.JSON)
    assert json.loads(unb64url(parts(raw)["protected"]))["alg"] == "RS256"
    verified = unseal(raw, fresh_pki.trust(), clock=clock)
    assert verified.envelope == envelope
    assert verified.signer.serial == credentials.certificate.serial_number


def test_leading_whitespace_still_sniffs_as_json(check: Check, sealed: bytes) -> None:
    """Whitespace around the JSON document is allowed, and the digest covers it as sent."""
    raw = b"\n " + sealed + b"\n"
    assert check(raw).digest == hashlib.sha256(raw).hexdigest()


# --- signature does not hold ------------------------------------------------------------


def test_tampered_payload(check: Check, sealed: bytes, envelope: Envelope) -> None:
    """A payload changed after signing raises SignatureInvalid, code signature-invalid."""
    other = envelope.model_copy(update={"case_id": "KZN-2026-999999"})
    body = b64url(other.model_dump_json(exclude_none=True).encode())
    refused(check, rebuild(sealed, payload=body), SignatureInvalid, "signature-invalid")


def test_tampered_protected_header(check: Check, sealed: bytes, signer: Credentials) -> None:
    """A protected header changed after signing raises SignatureInvalid, signature-invalid."""
    # Same members, other bytes (spacing): the signature covers the bytes, not the meaning.
    protected = b64url(json.dumps(header_for(signer), indent=1).encode())
    refused(check, rebuild(sealed, protected=protected), SignatureInvalid, "signature-invalid")


@pytest.mark.parametrize("cut", [1, 32, 63])
def test_signature_of_wrong_length(check: Check, sealed: bytes, cut: int) -> None:
    """An ES256 signature that is not 64 bytes raises SignatureInvalid, signature-invalid."""
    value = unb64url(parts(sealed)["signature"])
    refused(
        check,
        rebuild(sealed, signature=b64url(value[:-cut])),
        SignatureInvalid,
        "signature-invalid",
    )
    refused(
        check,
        rebuild(sealed, signature=b64url(value + b"\0")),
        SignatureInvalid,
        "signature-invalid",
    )


def test_der_ecdsa_signature(check: Check, sealed: bytes, signer: Credentials) -> None:
    """A DER-encoded ECDSA signature (not r||s) raises SignatureInvalid, signature-invalid."""
    members = parts(sealed)
    assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
    der = signer.key.sign(
        f"{members['protected']}.{members['payload']}".encode(), ec.ECDSA(hashes.SHA256())
    )
    refused(check, rebuild(sealed, signature=b64url(der)), SignatureInvalid, "signature-invalid")


def test_zero_signature(check: Check, sealed: bytes) -> None:
    """A signature of 64 zero bytes (r = s = 0) raises SignatureInvalid, signature-invalid."""
    refused(
        check, rebuild(sealed, signature=b64url(bytes(64))), SignatureInvalid, "signature-invalid"
    )


def test_empty_signature(check: Check, sealed: bytes) -> None:
    """An empty signature raises SignatureInvalid, signature-invalid."""
    refused(check, rebuild(sealed, signature=""), SignatureInvalid, "signature-invalid")


# --- algorithms -------------------------------------------------------------------------


def test_alg_none(check: Check, sealed: bytes, signer: Credentials) -> None:
    """alg 'none' with an empty signature raises UnsupportedAlgorithm, unsupported-algorithm."""
    protected = b64url(json.dumps(header_for(signer, alg="none")).encode())
    raw = rebuild(sealed, protected=protected, signature="")
    refused(check, raw, UnsupportedAlgorithm, "unsupported-algorithm")


def test_alg_hs256_with_public_key_as_secret(
    check: Check, sealed: bytes, signer: Credentials
) -> None:
    """HS256 keyed with the signer's public key raises UnsupportedAlgorithm (key confusion)."""
    members = parts(sealed)
    protected = b64url(json.dumps(header_for(signer, alg="HS256")).encode())
    for secret in (
        signer.certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        signer.certificate_der,
    ):
        mac = hmac.new(secret, f"{protected}.{members['payload']}".encode(), hashlib.sha256)
        raw = rebuild(sealed, protected=protected, signature=b64url(mac.digest()))
        refused(check, raw, UnsupportedAlgorithm, "unsupported-algorithm")


@pytest.mark.parametrize(
    "alg", ["ES384", "ES512", "PS256", "RS512", "EdDSA", "HS512", "es256", "ES256 ", "", None, 256]
)
def test_other_algorithms(check: Check, signer: Credentials, envelope: Envelope, alg: Any) -> None:
    """Any alg but ES256/RS256 (exact spelling) raises UnsupportedAlgorithm, its code."""
    raw = forge(signer, envelope, header_for(signer, alg=alg))
    refused(check, raw, UnsupportedAlgorithm, "unsupported-algorithm")


def test_missing_alg(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """A header without alg raises UnsupportedAlgorithm, unsupported-algorithm."""
    header = header_for(signer)
    del header["alg"]
    refused(check, forge(signer, envelope, header), UnsupportedAlgorithm, "unsupported-algorithm")


def test_rs256_with_ec_certificate(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """alg RS256 over an EC certificate raises UnsupportedAlgorithm, unsupported-algorithm."""
    raw = forge(signer, envelope, header_for(signer, alg="RS256"))
    refused(check, raw, UnsupportedAlgorithm, "unsupported-algorithm")


def test_es256_with_rsa_certificate(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """alg ES256 over an RSA certificate raises UnsupportedAlgorithm, unsupported-algorithm."""
    credentials = fresh_pki.issue("single-center", KeyType.RSA)
    raw = forge(credentials, make_envelope(clock), header_for(credentials, alg="ES256"))
    trust = fresh_pki.trust()
    refused(
        lambda r: unseal(r, trust, clock=clock), raw, UnsupportedAlgorithm, "unsupported-algorithm"
    )


# --- members and header parameters ------------------------------------------------------


def test_unprotected_header_member(check: Check, sealed: bytes) -> None:
    """An unprotected 'header' member raises Malformed, malformed (see OFF_PROFILE)."""
    raw = rebuild(sealed, header={"kid": "single-center"})
    refused(check, raw, *OFF_PROFILE)


def test_extra_member(check: Check, sealed: bytes) -> None:
    """Any member beyond protected/payload/signature raises Malformed, malformed."""
    refused(check, rebuild(sealed, note="hi"), *OFF_PROFILE)


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
def test_missing_member(check: Check, sealed: bytes, member: str) -> None:
    """A flattened JWS without one of its three members raises Malformed, malformed."""
    refused(check, rebuild(sealed, **{member: None}), *OFF_PROFILE)


def test_general_serialization(check: Check, sealed: bytes) -> None:
    """The general JSON serialization (signatures array) raises Malformed, malformed."""
    members = parts(sealed)
    general = {
        "payload": members["payload"],
        "signatures": [{"protected": members["protected"], "signature": members["signature"]}],
    }
    refused(check, json.dumps(general).encode(), *OFF_PROFILE)


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
def test_member_not_a_string(check: Check, sealed: bytes, member: str) -> None:
    """A member that is not a string raises Malformed, malformed."""
    refused(check, rebuild(sealed, **{member: {"x": 1}}), Malformed, "malformed")


def test_not_an_object(check: Check, sealed: bytes) -> None:
    """A top-level array or an unrelated object raises Malformed, malformed."""
    # sniff_format wants '{'; a top-level array is not even recognised as JSON.
    refused(check, b"[" + sealed + b"]", Malformed, "malformed")
    refused(check, b'{"a":[1]}', *OFF_PROFILE)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jwk", {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        ("jku", "https://attacker.example/keys.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("kid", "single-center"),
        ("crit", ["b64"]),
        ("b64", False),
        ("x5t", "AAAA"),
        ("x5t#S256", "AAAA"),
        ("zip", "DEF"),
        ("enc", "A256GCM"),
    ],
)
def test_header_parameter_outside_profile(
    check: Check, signer: Credentials, envelope: Envelope, name: str, value: Any
) -> None:
    """Header parameters outside alg/x5c/cty/typ raise UnsupportedAlgorithm, its code."""
    raw = forge(signer, envelope, header_for(signer, **{name: value}))
    refused(check, raw, UnsupportedAlgorithm, "unsupported-algorithm")


@pytest.mark.parametrize("typ", ["JOSE+JSON", "JWT", "kzn-audit-batch+jws", "kzn-audit-ack+jws"])
def test_typ_on_an_envelope(
    check: Check, signer: Credentials, envelope: Envelope, typ: str
) -> None:
    """An envelope carries no typ: any typ raises WrongDocumentType, wrong-document-type."""
    raw = forge(signer, envelope, header_for(signer, typ=typ))
    refused(check, raw, WrongDocumentType, "wrong-document-type")


@pytest.mark.parametrize(
    "cty",
    ["application/json", "application/vnd.kazan.audit-batch+json", "", None, 1, ["x"], {}],
    ids=repr,
)
def test_cty_not_the_envelopes(
    check: Check, signer: Credentials, envelope: Envelope, cty: Any
) -> None:
    """A cty other than the envelope's (or missing) raises WrongDocumentType."""
    header = header_for(signer, cty=cty)
    if cty is None:
        del header["cty"]
    refused(check, forge(signer, envelope, header), WrongDocumentType, "wrong-document-type")


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("alg", ["ES256"], UnsupportedAlgorithm),
        ("alg", {"ES256": 1}, UnsupportedAlgorithm),
        ("alg", 256, UnsupportedAlgorithm),
        ("alg", None, UnsupportedAlgorithm),
        ("alg", True, UnsupportedAlgorithm),
        ("typ", ["kzn-audit-batch+jws"], WrongDocumentType),
        ("typ", {"a": 1}, WrongDocumentType),
        ("typ", 7, WrongDocumentType),
        ("cty", {"a": 1}, WrongDocumentType),
        ("x5c", [["MIIB"]], SignatureInvalid),
        ("x5c", [{"a": "b"}], SignatureInvalid),
        ("x5c", [None], SignatureInvalid),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_header_member_of_the_wrong_json_type(
    check: Check,
    signer: Credentials,
    envelope: Envelope,
    name: str,
    value: Any,
    error: type[ExchangeError],
) -> None:
    """A header member of another JSON type than the profile's is refused with a code."""
    raw = forge(signer, envelope, header_for(signer, **{name: value}))
    refused(check, raw, error, error.code)


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
def test_non_ascii_member(check: Check, sealed: bytes, member: str) -> None:
    """A JWS member with a non-ASCII character raises Malformed, malformed."""
    value = parts(sealed)[member]
    refused(check, rebuild(sealed, **{member: value[:-1] + "\u00e9"}), Malformed, "malformed")


def test_non_ascii_x5c(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """x5c with a non-ASCII character raises Malformed, malformed."""
    x5c = header_for(signer)["x5c"][0]
    raw = forge(signer, envelope, header_for(signer, x5c=[x5c[:-4] + "\u0436==="]))
    refused(check, raw, Malformed, "malformed")


def test_protected_header_not_an_object(
    check: Check, signer: Credentials, envelope: Envelope
) -> None:
    """A protected header that is a JSON array raises Malformed, malformed."""
    raw = forge(signer, envelope, protected=b64url(b'["ES256"]'))
    refused(check, raw, Malformed, "malformed")


def test_protected_header_not_json(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """A protected header that is not JSON raises Malformed, malformed."""
    raw = forge(signer, envelope, protected=b64url(b"alg=ES256"))
    refused(check, raw, Malformed, "malformed")


@pytest.mark.parametrize("member", ["protected", "signature"])
def test_member_not_base64url(check: Check, sealed: bytes, member: str) -> None:
    """Padding or standard-base64 characters in a member raise Malformed, malformed."""
    value = parts(sealed)[member]
    refused(check, rebuild(sealed, **{member: value + "="}), Malformed, "malformed")
    refused(check, rebuild(sealed, **{member: "+/" + value[2:]}), Malformed, "malformed")


def test_signature_with_unused_bits_set(check: Check, sealed: bytes) -> None:
    """Another spelling of the same signature bytes raises Malformed, malformed.

    The signature member is outside what is signed: accepted, it would give one signed
    message many wire forms, each with a digest of its own.
    """
    value = parts(sealed)["signature"]
    assert len(value) % 4 == 2  # 64 bytes: the last character carries 4 unused bits
    other = respelled(value, 0)
    assert unb64url(other) == unb64url(value)  # the same bytes, spelled otherwise
    refused(check, rebuild(sealed, signature=other), Malformed, "malformed")


def test_altered_payload_encoding(check: Check, sealed: bytes) -> None:
    """Re-encoding the payload string breaks the signature: SignatureInvalid, its code.

    The signature covers the payload's base64url text, checked before it is decoded.
    """
    value = parts(sealed)["payload"]
    refused(check, rebuild(sealed, payload=value + "="), SignatureInvalid, "signature-invalid")
    refused(check, rebuild(sealed, payload="+/" + value[2:]), SignatureInvalid, "signature-invalid")


def test_signed_payload_not_base64url(
    check: Check, signer: Credentials, envelope: Envelope
) -> None:
    """A properly signed payload in padded or standard base64 raises Malformed, malformed."""
    padded = base64.urlsafe_b64encode(b'{"a":"bc"}').decode()
    assert padded.endswith("=")
    refused(check, forge(signer, envelope, body=padded), Malformed, "malformed")
    standard = base64.b64encode(b'{"a":"\xff\xfe?>"}').decode()
    refused(check, forge(signer, envelope, body="+/" + standard), Malformed, "malformed")


# --- x5c --------------------------------------------------------------------------------


def test_x5c_missing(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """A header without x5c raises SignatureInvalid, signature-invalid."""
    header = header_for(signer)
    del header["x5c"]
    refused(check, forge(signer, envelope, header), SignatureInvalid, "signature-invalid")


@pytest.mark.parametrize(
    "x5c",
    [[], "MIIB", {"0": "MIIB"}, [1], None, ["a", "b"], ["a", "b", "c", "d", "e"]],
    ids=["empty", "string", "object", "int-item", "null", "two", "five"],
)
def test_x5c_not_a_list_of_one_string(
    check: Check, signer: Credentials, envelope: Envelope, x5c: Any
) -> None:
    """x5c that is not exactly one string raises SignatureInvalid, signature-invalid."""
    raw = forge(signer, envelope, header_for(signer, x5c=x5c))
    refused(check, raw, SignatureInvalid, "signature-invalid")


@pytest.mark.parametrize("value", ["not base64!", "AAA", "MII*", "a-b_"], ids=str)
def test_x5c_garbage_base64(
    check: Check, signer: Credentials, envelope: Envelope, value: str
) -> None:
    """x5c that is not standard base64 (base64url included) raises Malformed, malformed."""
    raw = forge(signer, envelope, header_for(signer, x5c=[value]))
    refused(check, raw, Malformed, "malformed")


def test_x5c_base64url_of_the_certificate(
    check: Check, signer: Credentials, envelope: Envelope
) -> None:
    """The certificate in base64url (RFC 7515 says base64) raises Malformed, malformed."""
    urlsafe = base64.urlsafe_b64encode(signer.certificate_der).decode()
    assert urlsafe != base64.b64encode(signer.certificate_der).decode()
    raw = forge(signer, envelope, header_for(signer, x5c=[urlsafe]))
    refused(check, raw, Malformed, "malformed")


def test_x5c_not_a_certificate(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """x5c holding base64 that is no certificate raises CertificateUnknown."""
    raw = forge(signer, envelope, header_for(signer, x5c=[base64.b64encode(b"hello").decode()]))
    refused(check, raw, CertificateUnknown, "certificate-unknown")


def test_x5c_certificate_of_another_key(
    check: Check, pki: ThrowawayPKI, signer: Credentials, envelope: Envelope
) -> None:
    """x5c naming a valid certificate whose key did not sign raises SignatureInvalid."""
    other = pki.credentials("improvement")
    x5c = [base64.b64encode(other.certificate_der).decode()]
    raw = forge(signer, envelope, header_for(signer, x5c=x5c))
    refused(check, raw, SignatureInvalid, "signature-invalid")


@pytest.mark.parametrize("extra", ["root", "garbage"])
def test_x5c_extra_chain_entries_are_refused(
    check: Check, pki: ThrowawayPKI, signer: Credentials, envelope: Envelope, extra: str
) -> None:
    """Entries after the signer are never checked, so they are refused: signature-invalid."""
    root = base64.b64encode(pki.trust().root.public_bytes(serialization.Encoding.DER)).decode()
    header = header_for(signer)
    header["x5c"] = [*header["x5c"], root if extra == "root" else "!!not base64!!"]
    refused(check, forge(signer, envelope, header), SignatureInvalid, "signature-invalid")


# --- parsing ----------------------------------------------------------------------------


def test_compact_serialization(check: Check, sealed: bytes) -> None:
    """The compact serialization instead of JSON raises Malformed, malformed."""
    refused(check, compact(sealed), Malformed, "malformed")


def test_compact_serialization_as_json_string(check: Check, sealed: bytes) -> None:
    """The compact serialization as a JSON string raises Malformed, malformed."""
    refused(check, json.dumps(compact(sealed).decode()).encode(), Malformed, "malformed")


def test_duplicate_top_level_member(check: Check, sealed: bytes, signer: Credentials) -> None:
    """A second 'payload' member raises Malformed, malformed (parser differential)."""
    members = parts(sealed)
    raw = (
        f'{{"protected":"{members["protected"]}","payload":"{members["payload"]}",'
        f'"payload":"{b64url(b"{}")}","signature":"{members["signature"]}"}}'
    ).encode()
    refused(check, raw, Malformed, "malformed")


def test_duplicate_header_parameter(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """A protected header with alg twice raises Malformed, malformed."""
    header = json.dumps(header_for(signer))
    protected = b64url(
        header.replace('{"alg": "ES256",', '{"alg": "ES256", "alg": "none",').encode()
    )
    assert b'"alg": "none"' in unb64url(protected)
    refused(check, forge(signer, envelope, protected=protected), Malformed, "malformed")


def test_duplicate_member_in_signed_envelope(
    check: Check, signer: Credentials, envelope: Envelope
) -> None:
    """A properly signed envelope with 'recipient' twice raises Malformed, malformed."""
    body = envelope.model_dump_json(exclude_none=True)
    doubled = body.replace(
        '"recipient":"improvement"', '"recipient":"improvement","recipient":"land-property"'
    )
    assert doubled != body
    refused(check, forge(signer, doubled.encode()), Malformed, "malformed")


def test_duplicate_member_in_payload_object(
    check: Check, signer: Credentials, envelope: Envelope
) -> None:
    """A duplicate key deep inside the envelope's payload raises Malformed, malformed."""
    body = envelope.model_dump_json(exclude_none=True)
    doubled = body.replace('"address":', '"address":"x","address":')
    assert doubled != body
    refused(check, forge(signer, doubled.encode()), Malformed, "malformed")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity(
    check: Check, sealed: bytes, signer: Credentials, envelope: Envelope, constant: str
) -> None:
    """NaN/Infinity at the top level or in the signed envelope raise Malformed, malformed."""
    refused(check, sealed[:-1] + f',"x":{constant}}}'.encode(), Malformed, "malformed")
    body = envelope.model_dump_json(exclude_none=True)
    signed = body[:-1] + f',"extra":{constant}}}'
    refused(check, forge(signer, signed.encode()), Malformed, "malformed")


def test_not_utf8(check: Check, sealed: bytes, signer: Credentials, envelope: Envelope) -> None:
    """Bytes that are not UTF-8, outside or inside the payload, raise Malformed, malformed."""
    refused(check, sealed[:-1] + b',"x":"\xff"}', Malformed, "malformed")
    refused(check, sealed.decode().encode("utf-16"), Malformed, "malformed")
    body = envelope.model_dump_json(exclude_none=True).encode()
    signed = body.replace(b"Ivan Petrov", b"Ivan \xc0\xaf Petrov")
    assert signed != body
    refused(check, forge(signer, signed), Malformed, "malformed")


def test_lone_surrogate_escape(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """A ``\\ud800`` escape (no character at all) in the signed envelope raises malformed."""
    body = envelope.model_dump_json(exclude_none=True)
    signed = body.replace("Ivan Petrov", "Ivan \\ud800 Petrov")
    assert signed != body
    refused(check, forge(signer, signed.encode()), Malformed, "malformed")


@pytest.mark.parametrize("keep", [1, 2, 50, -1])
def test_truncated(check: Check, sealed: bytes, keep: int) -> None:
    """A JWS cut short raises Malformed, malformed."""
    refused(check, sealed[:keep], Malformed, "malformed")


def test_empty_input(check: Check) -> None:
    """Empty bytes raise Malformed, malformed."""
    refused(check, b"", Malformed, "malformed")


def test_signed_payload_not_an_envelope(check: Check, signer: Credentials) -> None:
    """A properly signed JSON that is not an envelope raises Malformed, malformed."""
    refused(check, forge(signer, b'{"hello":"world"}'), Malformed, "malformed")
    refused(check, forge(signer, b"[]"), Malformed, "malformed")


def test_oversized(trust: TrustStore, clock: FrozenClock, sealed: bytes) -> None:
    """More bytes than max_size raises TooLarge, code too-large, before parsing."""
    with pytest.raises(TooLarge) as caught:
        unseal(sealed, trust, clock=clock, max_size=len(sealed) - 1)
    assert caught.value.code == "too-large"
    assert unseal(sealed, trust, clock=clock, max_size=len(sealed)).raw == sealed
    with pytest.raises(TooLarge) as direct:
        verify_jws(b"{" + b" " * 100, trust, clock.now(), max_size=50)
    assert direct.value.code == "too-large"


def test_oversized_default_limit(check: Check, signer: Credentials, envelope: Envelope) -> None:
    """A properly signed JWS over the default 1 MiB raises TooLarge, too-large."""
    big = envelope.model_copy(update={"payload": {"blob": "x" * MAX_SIZE}})
    refused(check, sign_jws(big, signer), TooLarge, "too-large")


# --- trust ------------------------------------------------------------------------------


def test_certificate_from_another_ca(
    tmp_path: Path, check: Check, envelope: Envelope, clock: FrozenClock
) -> None:
    """A party certificate from another root raises CertificateUnknown, certificate-unknown."""
    stranger = ThrowawayPKI.create(tmp_path / "other", ("single-center",), clock)
    raw = seal(envelope, stranger.credentials("single-center"), WireFormat.JSON)
    refused(check, raw, CertificateUnknown, "certificate-unknown")


def test_expired(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """Judged after its not-after, the certificate raises CertificateExpired, its code."""
    credentials = fresh_pki.credentials("single-center")
    raw = seal(make_envelope(clock), credentials, WireFormat.JSON)
    trust = fresh_pki.trust()
    clock.advance(timedelta(days=366))
    error = refused(
        lambda r: unseal(r, trust, clock=clock), raw, CertificateExpired, "certificate-expired"
    )
    assert error.data["serial"] == credentials.certificate.serial_number


def test_not_yet_valid(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """Judged before its not-before, the certificate raises CertificateNotYetValid."""
    start = clock.now()
    clock.advance(timedelta(days=3))
    credentials = fresh_pki.issue("single-center")
    raw = seal(make_envelope(clock), credentials, WireFormat.JSON)
    clock.set(start)
    trust = fresh_pki.trust()
    refused(
        lambda r: unseal(r, trust, clock=clock),
        raw,
        CertificateNotYetValid,
        "certificate-not-yet-valid",
    )


def test_revoked(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """A revoked certificate raises CertificateRevoked, certificate-revoked."""
    credentials = fresh_pki.credentials("single-center")
    raw = seal(make_envelope(clock), credentials, WireFormat.JSON)
    assert unseal(raw, fresh_pki.trust(), clock=clock).signer.party == "single-center"
    fresh_pki.authority.revoke("single-center")
    refused(
        lambda r: unseal(r, fresh_pki.trust(), clock=clock),
        raw,
        CertificateRevoked,
        "certificate-revoked",
    )


def test_other_partys_valid_certificate(
    check: Check, pki: ThrowawayPKI, envelope: Envelope
) -> None:
    """improvement signing an envelope whose sender is single-center raises SenderMismatch."""
    assert envelope.sender == "single-center"
    raw = sign_jws(envelope, pki.credentials("improvement"))
    refused(check, raw, SenderMismatch, "sender-mismatch")


def test_seal_refuses_other_partys_credentials(pki: ThrowawayPKI, envelope: Envelope) -> None:
    """seal() itself raises SenderMismatch, sender-mismatch, for another party's credentials."""
    with pytest.raises(SenderMismatch) as caught:
        seal(envelope, pki.credentials("improvement"), WireFormat.JSON)
    assert caught.value.code == "sender-mismatch"
