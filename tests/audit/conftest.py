"""The audit tests share the PostgreSQL fixtures of tests/conftest.py (pg_prefix, pg_schema),
and, against the real broker, a PKI on the real clock, settings and the central store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.audit.central import CentralStore, SQLiteCentralStore
from exchange.audit.central.postgres import PostgresCentralStore
from exchange.config import Settings
from exchange.testing import ThrowawayPKI
from exchange.transport.names import BusNames
from tests.bus.conftest import AMQP_URL, BUS_PARTIES, DATA, delete_topology
from tests.postgres import DSN


@pytest.fixture(scope="module")
def audit_pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    """A PKI on the real clock."""
    return ThrowawayPKI.create(tmp_path_factory.mktemp("audit-pki"), BUS_PARTIES, SYSTEM_CLOCK)


@pytest.fixture
def settings(
    audit_pki: ThrowawayPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A name prefix of this test's own, and quick checkpoints and shipping."""
    monkeypatch.setenv("EXCHANGE_AUDIT_CHECKPOINT_EVERY", "4")
    monkeypatch.setenv("EXCHANGE_AUDIT_SHIP_INTERVAL", "0.05")
    prefix = f"ta{uuid.uuid4().hex[:8]}."
    yield Settings(
        certs_dir=audit_pki.path,
        schemas_dir=DATA / "schemas",
        catalog=DATA / "catalog.toml",
        amqp_url=AMQP_URL,
        bus_prefix=prefix,
        store_dir=tmp_path / "stores",
    )
    asyncio.run(delete_topology(BusNames(prefix), BUS_PARTIES))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def central(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CentralStore]:
    """The central store, on each backend (opened by the collector)."""
    if request.param == "sqlite":
        yield SQLiteCentralStore(tmp_path / "central.db")
    else:
        prefix = request.getfixturevalue("pg_prefix")  # dropped at the end of the session
        yield PostgresCentralStore(DSN, f"{prefix}_{uuid.uuid4().hex[:6]}")
