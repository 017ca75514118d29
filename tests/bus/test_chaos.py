"""Nothing lost, nothing answered twice: 1,000 requests through a node kill and a broker restart.

The broker restart runs on a RabbitMQ node of the test's own (DESIGN.md, Own broker for broker
failures), never on the machine's broker that other tests use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from exchange.config import Settings
from tests._broker import BrokerNode
from tests.bus.conftest import MakeNode
from tests.bus.streams import (
    ProviderProcess,
    answered,
    check_once_each,
    sent_ids,
    stream_until_a_quarter_answered,
    wait_all_answered,
)

pytestmark = [pytest.mark.rabbit, pytest.mark.slow, pytest.mark.chaos]

REQUESTS = 1000


@pytest.fixture
async def provider(settings: Settings) -> AsyncIterator[ProviderProcess]:
    """The provider as a separate process (stopped after the test)."""
    process = ProviderProcess(settings)
    yield process
    process.terminate()


async def test_receiving_node_killed_mid_stream(
    make_node: MakeNode, settings: Settings, provider: ProviderProcess
) -> None:
    """SIGKILL of the provider mid-stream and a restart: all 1,000 answered exactly once."""
    sender, sending = await stream_until_a_quarter_answered(make_node, provider, REQUESTS)
    provider.kill()
    killed_at = await answered(sender.ctx.store, await sent_ids(sender))
    await provider.start()
    ids = await sending
    assert killed_at < REQUESTS, "the kill came too late to test anything"
    await wait_all_answered(sender, ids, 180)
    provider.terminate()
    await check_once_each(sender, settings, ids)


@pytest.fixture
async def own_provider(own_settings: Settings) -> AsyncIterator[ProviderProcess]:
    """The provider as a separate process on the test's own broker (stopped after the test)."""
    process = ProviderProcess(own_settings)
    yield process
    process.terminate()


@pytest.mark.usefixtures("amqp_client_logs_quiet")
async def test_broker_stopped_and_started_mid_stream(
    make_own_node: MakeNode,
    own_settings: Settings,
    own_provider: ProviderProcess,
    own_broker: BrokerNode,
) -> None:
    """The test's own broker stops and starts mid-stream: all 1,000 answered exactly once."""
    sender, sending = await stream_until_a_quarter_answered(make_own_node, own_provider, REQUESTS)
    own_broker.stop()
    await own_broker.start()  # same ports and data directory: the durable queues are back
    ids = await sending
    await wait_all_answered(sender, ids, 240)
    own_provider.terminate()
    await check_once_each(sender, own_settings, ids)
