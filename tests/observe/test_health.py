"""Readiness checks that can fail without a broker: the trust store, the certificate, the store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from exchange._clock import FrozenClock
from exchange.exceptions import NotReady, StoreError
from exchange.node.store.sqlite import SQLiteStore
from exchange.observe.health import (
    READY_PROBE_KEY,
    Readiness,
    certificate_check,
    store_check,
    trust_check,
)
from exchange.pki.trust import CRL_FILE
from exchange.testing import ThrowawayPKI


async def test_trust_is_ready_with_a_current_crl(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """A fresh PKI's root and CRL pass."""
    await trust_check(fresh_pki.trust(), clock)()


async def test_trust_not_ready_past_the_crls_next_update(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """Once the CRL's next update has passed, nothing can be verified: not ready, says why."""
    trust = fresh_pki.trust()
    clock.advance(timedelta(days=30))
    with pytest.raises(NotReady, match="exchange certs crl") as info:
        await trust_check(trust, clock)()
    assert info.value.check == "trust"


async def test_trust_not_ready_without_a_crl(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """A trust store whose crl.pem went missing is not ready (the file is looked at again)."""
    trust = fresh_pki.trust()
    (fresh_pki.path / CRL_FILE).unlink()
    with pytest.raises(NotReady, match="no readable CRL"):
        await trust_check(trust, clock)()


async def test_trust_not_ready_with_a_corrupt_crl(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """A crl.pem that does not parse is not ready, naming the file."""
    trust = fresh_pki.trust()
    (fresh_pki.path / CRL_FILE).write_bytes(b"-----BEGIN X509 CRL-----\nnot a crl\n")
    with pytest.raises(NotReady, match="not a readable CRL"):
        await trust_check(trust, clock)()


async def test_certificate_not_ready_once_expired(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """The identity's own signing certificate past its validity: not ready, rotate it."""
    certificate = fresh_pki.credentials("improvement").certificate
    await certificate_check(certificate, clock)()
    clock.set(certificate.not_valid_after_utc + timedelta(seconds=1))
    with pytest.raises(NotReady, match="exchange certs rotate") as info:
        await certificate_check(certificate, clock)()
    assert info.value.check == "certificate"


async def test_store_check_writes_and_fails_when_closed(tmp_path: Path, clock: FrozenClock) -> None:
    """The store check is a real write (through the writer); a closed store fails it."""
    store = SQLiteStore(tmp_path / "improvement.db", "improvement", clock)
    await store.open()
    try:
        await store_check(store, clock)()
        assert await store.get_meta(READY_PROBE_KEY) == clock.now().isoformat()
    finally:
        await store.close()
    with pytest.raises(StoreError):
        await store_check(store, clock)()
    problems = await Readiness({"store": store_check(store, clock)}).problems()
    assert set(problems) == {"store"}
