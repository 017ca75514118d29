"""Shared fixtures: a frozen clock, a throwaway PKI per test session, its trust store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import structlog

from exchange._clock import FrozenClock
from exchange.catalog import read_catalog_data
from exchange.config import packaged
from exchange.pki.trust import TrustStore
from exchange.testing import ThrowawayPKI
from tests.postgres import drop_schemas

# Every department of the city's catalog (the only list of parties).
PARTIES = tuple(
    p.id for p in read_catalog_data(packaged("catalog.toml")).parties if p.is_department
)


@pytest.fixture(autouse=True)
def _structlog_as_it_was() -> Iterator[None]:
    """A test that runs a CLI command configures structlog for the whole process (its level
    filter among it): put the configuration back, so a later test's ``capture_logs`` sees
    info records of loggers it first uses."""
    config = structlog.get_config()
    yield
    structlog.configure(**config)


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


@pytest.fixture(scope="session")
def pg_prefix() -> Iterator[str]:
    """This session's PostgreSQL schema prefix; everything under it is dropped at the end."""
    prefix = f"t_{uuid4().hex[:10]}"
    yield prefix
    asyncio.run(drop_schemas(prefix))


@pytest.fixture
async def pg_schema(pg_prefix: str) -> AsyncIterator[str]:
    """A PostgreSQL schema of this test's own, dropped after it."""
    name = f"{pg_prefix}_{uuid4().hex[:6]}"
    yield name
    await drop_schemas(name)
