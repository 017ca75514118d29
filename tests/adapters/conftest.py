"""Fixtures of the adapters' tests: the whole city on the real broker, a prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.catalog import Catalog
from exchange.config import Settings
from exchange.node import Node, build_node
from exchange.node.adapters import load_adapters
from exchange.testing import ThrowawayPKI
from exchange.transport.names import BusNames
from tests.bus.conftest import AMQP_URL, delete_topology
from tests.catalog._city import REPO

# The adapters' own settings, paced for tests (as tests.bus.conftest.FAST).
FAST = {
    "receipt_timeouts": (1.0, 2.0),
    "handler_retry_delays": (0.1, 0.2),
    "publish_grace": 1.0,
    "poll_interval": 0.05,
}

City = dict[str, Node]


@pytest.fixture(scope="session")
def city_catalog() -> Catalog:
    """The city's catalog, loaded once."""
    return Catalog.load(REPO / "exchange/data/catalog.toml", REPO / "exchange/data/schemas")


@pytest.fixture(scope="session")
def city_pki(tmp_path_factory: pytest.TempPathFactory, city_catalog: Catalog) -> ThrowawayPKI:
    """A PKI of every party of the catalog (collector and console too), on the real clock."""
    parties = tuple(party.id for party in city_catalog.parties)
    infrastructure = tuple(p.id for p in city_catalog.data.parties if not p.is_department)
    return ThrowawayPKI.create(
        tmp_path_factory.mktemp("city-pki"), parties, SYSTEM_CLOCK, infrastructure
    )


@pytest.fixture
async def city_settings(
    city_pki: ThrowawayPKI, city_catalog: Catalog, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings with the city's catalog and a bus prefix of this test's own (removed after)."""
    prefix = f"tc{uuid.uuid4().hex[:8]}."
    yield Settings(
        certs_dir=city_pki.path,
        schemas_dir=REPO / "exchange/data/schemas",
        catalog=REPO / "exchange/data/catalog.toml",
        amqp_url=AMQP_URL,
        bus_prefix=prefix,
        store_dir=tmp_path / "stores",
        store_dsn=None,
    )
    await delete_topology(BusNames(prefix), tuple(party.id for party in city_catalog.parties))


@pytest.fixture
async def city(city_settings: Settings, city_catalog: Catalog) -> AsyncIterator[City]:
    """Every department's node with its adapter's simulated system, started in the catalog's
    start order; stopped after."""
    nodes: City = {}
    try:
        for adapter in load_adapters(city_catalog):
            config = adapter.config.node_config(**FAST)
            node = build_node(adapter.party, city_settings, config=config, catalog=city_catalog)
            adapter.register(node)
            await node.start()
            nodes[adapter.party] = node
        yield nodes
    finally:
        for node in reversed(list(nodes.values())):
            await node.stop()
