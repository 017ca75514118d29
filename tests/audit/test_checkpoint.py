"""Signed checkpoints: they verify for their party, and every forgery is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from exchange._clock import FrozenClock
from exchange.audit.checkpoint import make_checkpoint, parse_checkpoint, verify_checkpoint
from exchange.exceptions import CheckpointInvalid
from exchange.pki.trust import TrustStore
from exchange.testing import ThrowawayPKI


def test_round_trip_and_verify(pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock) -> None:
    """A checkpoint survives its JSON form and verifies for its party."""
    checkpoint = make_checkpoint(pki.credentials("improvement"), 1000, "a" * 64, clock.now())
    again = parse_checkpoint(checkpoint.dumps())
    assert again == checkpoint
    verify_checkpoint(again, trust, "improvement")


@pytest.mark.parametrize(
    "change",
    [
        {"hash": "b" * 64},
        {"seq": 999},
        {"party": "single-center"},
        {"signature": b"\x00" * 64},
    ],
)
def test_changed_field_is_refused(
    pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock, change: dict[str, object]
) -> None:
    """Any change after signing makes it fail, naming the checkpoint's seq."""
    checkpoint = make_checkpoint(pki.credentials("improvement"), 1000, "a" * 64, clock.now())
    forged = replace(checkpoint, **change)  # type: ignore[arg-type]
    with pytest.raises(CheckpointInvalid) as info:
        verify_checkpoint(forged, trust, "improvement")
    assert info.value.data["seq"] == forged.seq


def test_other_partys_key_is_refused(
    pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock
) -> None:
    """A checkpoint signed by another party does not vouch for this party's chain."""
    checkpoint = make_checkpoint(pki.credentials("single-center"), 10, "a" * 64, clock.now())
    with pytest.raises(CheckpointInvalid, match="signed by single-center"):
        verify_checkpoint(replace(checkpoint, party="improvement"), trust, "improvement")


def test_judged_at_its_own_time(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """Signed while the certificate was good: valid; dated after its revocation: refused."""
    credentials = fresh_pki.credentials("improvement")
    before = make_checkpoint(credentials, 10, "a" * 64, clock.now())
    clock.advance(timedelta(minutes=5))
    fresh_pki.authority.revoke("improvement")
    clock.advance(timedelta(minutes=5))
    after = make_checkpoint(credentials, 20, "b" * 64, clock.now())
    trust = fresh_pki.trust()
    verify_checkpoint(before, trust, "improvement")
    with pytest.raises(CheckpointInvalid, match="revoked"):
        verify_checkpoint(after, trust, "improvement")


def test_garbage_is_refused() -> None:
    """Bytes that are not a checkpoint document raise CheckpointInvalid."""
    with pytest.raises(CheckpointInvalid):
        parse_checkpoint(b'{"party": "x"}')
