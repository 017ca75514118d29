"""Signed audit batches: what a party seals, and every way the collector refuses a batch."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from exchange._clock import FrozenClock
from exchange.audit.batch import BATCH_CONTENT_TYPE, Batch, claimed_party, open_batch, seal_batch
from exchange.audit.checkpoint import make_checkpoint
from exchange.audit.collector import Collector
from exchange.exceptions import ExchangeError
from exchange.ledger.chain import canonical_bytes
from exchange.pki.authority import RevocationReason
from exchange.pki.trust import TrustStore
from exchange.signing import WireFormat, seal, unseal
from exchange.signing.jws.profile import AUDIT_ACK_TYPE, AUDIT_BATCH_TYPE
from exchange.testing import ThrowawayPKI, make_envelope
from exchange.transport.names import BusNames
from tests.audit.central.contract import PARTY, T0, chain
from tests.signing.jws._forge import b64url, forge, header_for, parts, unb64url

AT = T0 + timedelta(minutes=5)


def _sealed(
    pki: ThrowawayPKI, records: Any = None, party: str = PARTY, signer: str = PARTY
) -> bytes:
    batch = Batch(party, chain(5) if records is None else records, [])
    return seal_batch(batch, pki.credentials(signer), AT)


def _payload(raw: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(unb64url(parts(raw)["payload"]))
    return doc


def _resigned(pki: ThrowawayPKI, doc: dict[str, Any], **header: Any) -> bytes:
    """``doc`` as a batch payload, properly signed by the party (an insider's forgery)."""
    credentials = pki.credentials(PARTY)
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return forge(
        credentials,
        payload,
        header_for(credentials, **{"typ": AUDIT_BATCH_TYPE, "cty": BATCH_CONTENT_TYPE, **header}),
    )


def _refused(raw: bytes, trust: TrustStore) -> ExchangeError:
    with pytest.raises(ExchangeError) as info:
        open_batch(raw, trust)
    return info.value


def test_a_sealed_batch_opens_as_it_was_sealed(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """The records, checkpoints, signer and signing time come back; records ride unchanged."""
    records = chain(5)
    checkpoint = make_checkpoint(pki.credentials(PARTY), 5, records[-1].hash, AT).dumps()
    raw = seal_batch(Batch(PARTY, records, [checkpoint]), pki.credentials(PARTY), AT)
    verified = open_batch(raw, trust)
    assert list(verified.batch.records) == records
    assert list(verified.batch.checkpoints) == [checkpoint]
    assert (verified.signer.party, verified.signed_at) == (PARTY, AT)
    payload = unb64url(parts(raw)["payload"])
    for r in records:  # the exact bytes the chain hashed are inside the signed payload
        assert canonical_bytes(r.seq, r.at, r.party, r.event, r.prev_hash) in payload
    assert _payload(raw)["envelopes"] == {}
    assert parts(raw)["protected"]
    assert claimed_party(raw) == PARTY


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"party": "improvement", "records": []}', b"[]", b""],
    ids=["not-json", "unsigned-batch", "array", "empty"],
)
def test_not_a_jws(raw: bytes, trust: TrustStore) -> None:
    """Anything that is not a flattened JWS (an unsigned batch too) is malformed."""
    assert _refused(raw, trust).code == "malformed"
    assert claimed_party(raw) == ("improvement" if b"party" in raw else None)


def test_changed_after_signing(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """A payload changed after signing fails the signature."""
    raw = _sealed(pki)
    jws = parts(raw)
    doc = _payload(raw)
    doc["records"][0]["record"]["detail"] = {"i": 99}
    jws["payload"] = b64url(json.dumps(doc).encode())
    assert _refused(json.dumps(jws).encode(), trust).code == "signature-invalid"


def test_an_envelope_is_not_a_batch(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """A signed envelope (no typ) is refused as another kind of document."""
    envelope = make_envelope(FrozenClock(), sender=PARTY, recipient="single-center")
    raw = seal(envelope, pki.credentials(PARTY), WireFormat.JSON)
    assert _refused(raw, trust).code == "wrong-document-type"


def test_a_batch_is_not_an_envelope(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """The other way round: the envelope verifier refuses a batch by its typ."""
    with pytest.raises(ExchangeError) as info:
        unseal(_sealed(pki), trust, clock=FrozenClock())
    assert info.value.code == "wrong-document-type"


def test_wrong_typ(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """A document of the acknowledgment type is not a batch, whatever it holds."""
    raw = _resigned(pki, _payload(_sealed(pki)), typ=AUDIT_ACK_TYPE)
    assert _refused(raw, trust).code == "wrong-document-type"


@pytest.mark.parametrize("alg", ["HS256", "none", "ES384"])
def test_wrong_alg(pki: ThrowawayPKI, trust: TrustStore, alg: str) -> None:
    """An algorithm outside the profile is refused."""
    raw = _resigned(pki, _payload(_sealed(pki)), alg=alg)
    assert _refused(raw, trust).code == "unsupported-algorithm"


def test_untrusted_certificate(pki: ThrowawayPKI, trust: TrustStore, tmp_path: Path) -> None:
    """A batch signed under another root CA names the party, but is not trusted."""
    stranger = ThrowawayPKI.create(tmp_path / "other", (PARTY,))
    raw = seal_batch(Batch(PARTY, chain(3), []), stranger.credentials(PARTY), AT)
    assert _refused(raw, trust).code == "certificate-unknown"


def test_revoked_certificate(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """A batch signed after its party's certificate was revoked is refused."""
    credentials = fresh_pki.credentials(PARTY)
    fresh_pki.authority.revoke(PARTY, RevocationReason.KEY_COMPROMISE)
    raw = seal_batch(Batch(PARTY, chain(3), []), credentials, clock.now() + timedelta(hours=1))
    assert _refused(raw, fresh_pki.trust()).code == "certificate-revoked"


def test_signed_before_the_revocation_still_counts(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """The certificate is judged at the signing time: an earlier batch stays good."""
    credentials = fresh_pki.credentials(PARTY)
    raw = seal_batch(Batch(PARTY, chain(3), []), credentials, clock.now() + timedelta(minutes=1))
    clock.advance(timedelta(hours=1))
    fresh_pki.authority.revoke(PARTY, RevocationReason.KEY_COMPROMISE)
    assert open_batch(raw, fresh_pki.trust()).signer.party == PARTY


def test_expired_certificate(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """A batch signed after the certificate's end is refused."""
    late = pki.credentials(PARTY).certificate.not_valid_after_utc + timedelta(days=1)
    raw = seal_batch(Batch(PARTY, chain(3), []), pki.credentials(PARTY), late)
    assert _refused(raw, trust).code == "certificate-expired"


def test_signed_by_another_party(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """single-center cannot write improvement's trail."""
    raw = _sealed(pki, signer="single-center")
    error = _refused(raw, trust)
    assert error.code == "sender-mismatch"
    assert PARTY in error.message


def test_signed_by_the_collector(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """The collector's certificate is good, but it is not the batch's party either."""
    assert _refused(_sealed(pki, signer="collector"), trust).code == "sender-mismatch"


def test_record_of_another_party(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """A record of single-center inside improvement's batch is refused at its seq."""
    records = [*chain(2), chain(3, "single-center")[2]]
    error = _refused(_sealed(pki, records), trust)
    assert (error.code, error.data["seq"]) == ("audit-tampered", 3)


def test_record_whose_hash_does_not_match(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """A record whose content was changed before signing (its hash kept) is refused."""
    records = chain(5)
    records[2] = replace(records[2], event=replace(records[2].event, detail={"i": 99}))
    error = _refused(_sealed(pki, records), trust)
    assert (error.code, error.data["seq"]) == ("audit-tampered", 3)


@pytest.mark.parametrize("drop", [2, 0], ids=["gap-inside", "reordered"])
def test_records_not_consecutive(pki: ThrowawayPKI, trust: TrustStore, drop: int) -> None:
    """Records inside one batch must be consecutive links of the chain."""
    records = chain(5)
    moved = records.pop(drop)
    if drop == 0:
        records.append(moved)
    error = _refused(_sealed(pki, records), trust)
    assert error.code == "audit-tampered"
    assert "not consecutive" in error.message


def test_envelopes_travel_signed(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """The archive's wire bytes come out of a batch as they went in, under their keys."""
    doc = _payload(_sealed(pki))
    doc["envelopes"] = {"ab" * 32: base64.b64encode(b"wire").decode()}
    assert open_batch(_resigned(pki, doc), trust).batch.envelopes == {"ab" * 32: b"wire"}


@pytest.mark.parametrize("value", ["not base64!", 7, ["a"]])
def test_envelopes_not_base64(pki: ThrowawayPKI, trust: TrustStore, value: Any) -> None:
    """An archived envelope that is not base64 text makes the batch malformed."""
    doc = _payload(_sealed(pki))
    doc["envelopes"] = {"ab" * 32: value}
    assert _refused(_resigned(pki, doc), trust).code == "malformed"


@pytest.mark.parametrize(
    ("member", "value"),
    [("version", 1), ("signed_at", "yesterday"), ("party", 7), ("records", "none")],
)
def test_bad_member(pki: ThrowawayPKI, trust: TrustStore, member: str, value: Any) -> None:
    """A signed payload that is not a version-2 batch is malformed."""
    doc = _payload(_sealed(pki))
    doc[member] = value
    assert _refused(_resigned(pki, doc), trust).code == "malformed"


def test_publisher_must_be_the_partys_broker_user(trust: TrustStore) -> None:
    """Where the broker vouches for a user_id, it must be the batch's party's broker user."""
    collector = Collector(None, BusNames("t."), None, trust, FrozenClock())  # type: ignore[arg-type]
    collector.check_publisher(None, PARTY)  # shared broker user: nothing to compare
    collector.check_publisher("t.improvement", PARTY)
    with pytest.raises(ExchangeError) as info:
        collector.check_publisher("t.single-center", PARTY)
    assert info.value.code == "broker-user-mismatch"
    assert "t.single-center" in info.value.message
