"""Shared fixtures: a frozen clock, a throwaway PKI per test session, its trust store."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange._clock import FrozenClock
from exchange.pki.trust import TrustStore
from exchange.testing import ThrowawayPKI

PARTIES = ("single-center", "improvement", "land-property", "architecture", "urban-permits")


@pytest.fixture
def clock() -> FrozenClock:
    """A clock at 2026-01-15 09:00 UTC that only moves when told."""
    return FrozenClock()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    """A root CA with an EC certificate for every party, valid around the frozen clock."""
    return ThrowawayPKI.create(tmp_path_factory.mktemp("pki"), PARTIES)


@pytest.fixture
def fresh_pki(tmp_path: Path, clock: FrozenClock) -> ThrowawayPKI:
    """A PKI of one's own, for tests that revoke, rotate or expire certificates."""
    return ThrowawayPKI.create(tmp_path / "pki", PARTIES, clock)


@pytest.fixture
def trust(pki: ThrowawayPKI) -> TrustStore:
    """The trust store of the session PKI."""
    return pki.trust()
