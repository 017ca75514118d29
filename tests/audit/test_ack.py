"""Head acknowledgments: only the collector's, only for the party that holds them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exchange.audit.ack import HeadAck, open_ack, seal_ack
from exchange.audit.batch import Batch, seal_batch
from exchange.exceptions import AckInvalid
from exchange.pki.trust import TrustStore
from exchange.testing import ThrowawayPKI
from tests.audit.central.contract import PARTY, T0

ACK = HeadAck(PARTY, 30, "a" * 64, T0 + timedelta(minutes=1), 7)


def test_round_trip(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """What the collector seals, its party opens unchanged."""
    raw = seal_ack(ACK, pki.credentials("collector"))
    assert open_ack(raw, trust, "collector", PARTY) == ACK


def _refused(raw: bytes, trust: TrustStore, party: str = PARTY) -> str:
    with pytest.raises(AckInvalid) as info:
        open_ack(raw, trust, "collector", party)
    assert info.value.code == "ack-invalid"
    return info.value.message


def test_signed_by_a_party(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """A party cannot acknowledge heads: only the collector's certificate counts."""
    assert "not the collector" in _refused(seal_ack(ACK, pki.credentials(PARTY)), trust)


def test_for_another_party(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """An acknowledgment of improvement's head is not single-center's."""
    raw = seal_ack(ACK, pki.credentials("collector"))
    assert "single-center" in _refused(raw, trust, "single-center")


def test_a_batch_is_not_an_acknowledgment(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """Another signed document of the collector's is refused by its typ."""
    raw = seal_batch(Batch("collector", [], []), pki.credentials("collector"), T0)
    assert "wrong-document-type" in _refused(raw, trust)


def test_changed_after_signing(pki: ThrowawayPKI, trust: TrustStore) -> None:
    """A changed acknowledgment fails its signature."""
    raw = seal_ack(ACK, pki.credentials("collector"))
    forged = seal_ack(HeadAck(PARTY, 99, "b" * 64, ACK.at, 7), pki.credentials("collector"))
    spliced = raw[: raw.index(b'"payload"')] + forged[forged.index(b'"payload"') :]
    spliced = spliced[: spliced.index(b',"signature"')] + raw[raw.index(b',"signature"') :]
    assert "signature-invalid" in _refused(spliced, trust)


def test_not_a_jws(trust: TrustStore) -> None:
    """Bytes that are not a signed document at all."""
    assert "malformed" in _refused(b'{"party": "improvement", "seq": 99}', trust)
