"""Fixtures for tests against the real RabbitMQ: a name prefix per session, live PKI, nodes."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.catalog import read_catalog_data
from exchange.config import Settings
from exchange.node import Node, NodeConfig, build_node
from exchange.testing import ThrowawayPKI
from exchange.transport.names import BusNames
from exchange.transport.topology import remove_topology
from tests._broker import BrokerNode

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DATA = Path(__file__).resolve().parent.parent / "data"
# Every department of the bus tests' catalog, in its file order.
BUS_PARTIES = tuple(
    p.id for p in read_catalog_data(DATA / "catalog.toml").parties if p.is_department
)

FAST = NodeConfig(
    receipt_timeouts=(1.0, 2.0),
    handler_retry_delays=(0.1, 0.2),
    publish_grace=1.0,
    poll_interval=0.05,
    wait_recheck=0.2,
)

MakeNode = Callable[..., Awaitable[Node]]


@pytest.fixture(scope="session")
def live_pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    """A PKI on the real clock (the broker tests run in real time)."""
    return ThrowawayPKI.create(tmp_path_factory.mktemp("live-pki"), BUS_PARTIES, SYSTEM_CLOCK)


@pytest.fixture(scope="session")
def bus_prefix() -> Iterator[str]:
    """A name prefix of this test session's own; its queues are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    yield prefix
    import asyncio

    asyncio.run(delete_topology(BusNames(prefix), BUS_PARTIES))


async def delete_topology(names: BusNames, parties: tuple[str, ...]) -> None:
    """Remove every queue and exchange under ``names``' prefix."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await remove_topology(await connection.channel(), names, parties)


@pytest.fixture
def settings(live_pki: ThrowawayPKI, bus_prefix: str, tmp_path: Path) -> Settings:
    """Settings for nodes of this test: test catalog, live PKI, own stores."""
    return Settings(
        certs_dir=live_pki.path,
        schemas_dir=DATA / "schemas",
        catalog=DATA / "catalog.toml",
        amqp_url=AMQP_URL,
        bus_prefix=bus_prefix,
        store_dir=tmp_path / "stores",
    )


@pytest.fixture
async def make_node(settings: Settings) -> AsyncIterator[MakeNode]:
    """Start nodes on the real broker; every node started is stopped after the test."""
    async with _nodes(settings) as make:
        yield make


@contextlib.asynccontextmanager
async def _nodes(settings: Settings) -> AsyncIterator[MakeNode]:
    started: list[Node] = []

    async def make(party: str, config: NodeConfig = FAST, **overrides: Any) -> Node:
        node = build_node(party, settings, config=config, **overrides)
        await node.start()
        started.append(node)
        return node

    try:
        yield make
    finally:
        for node in reversed(started):
            await node.stop()


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[BrokerNode]:
    """A RabbitMQ node of this test's own (DESIGN.md: Own broker for broker failures).

    The test may stop and start it; afterwards it is killed by its pid, whatever happened.
    """
    broker = BrokerNode(tmp_path / "broker")
    try:
        await broker.start()
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def own_settings(settings: Settings, own_broker: BrokerNode) -> Settings:
    """The test's settings, on its own broker."""
    return settings.model_copy(update={"amqp_url": own_broker.url})


@pytest.fixture
async def make_own_node(own_settings: Settings) -> AsyncIterator[MakeNode]:
    """Start nodes on the test's own broker; stopped after the test, before the broker."""
    async with _nodes(own_settings) as make:
        yield make


@pytest.fixture
def amqp_client_logs_quiet() -> Iterator[None]:
    """Keep aiormq's and asyncio's error records (with tracebacks) out of pytest's log capture.

    When the broker goes away under a thousand in-flight publishes, aiormq and asyncio log
    the broken connection with its traceback. Captured by pytest on this Python 3.11, that
    was followed by the session dying at its summary ("AST constructor recursion depth
    mismatch" importing hypothesis); with ``-s``, ``-p no:logging`` or these two loggers
    quiet it runs clean. The outcome this test checks is in the stores either way.
    """
    logs = [logging.getLogger(name) for name in ("asyncio", "aiormq")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)
