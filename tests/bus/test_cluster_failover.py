"""Broker failover on a three-node RabbitMQ cluster of the test's own (issue 13).

The provider runs in its own process with the cluster's three addresses, the first of which
it connects to; that broker node is SIGKILLed mid-stream of 5,000 requests. The provider must
resume on another node (the quorum queues' leaders move there) before the killed node comes
back, and in the end every request is answered exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from exchange.config import Settings
from exchange.node import Node
from tests._cluster import BrokerCluster
from tests.bus.conftest import MakeNode, _nodes
from tests.bus.streams import (
    ProviderProcess,
    answered,
    check_once_each,
    sent_ids,
    stream_until_a_quarter_answered,
    wait_all_answered,
)

pytestmark = [pytest.mark.rabbit, pytest.mark.slow, pytest.mark.chaos]

REQUESTS = 5000
RESUMED = 100  # answers after the kill that show the provider works on another node


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[BrokerCluster]:
    """Three RabbitMQ nodes in one cluster; every node killed by its pid afterwards."""
    brokers = BrokerCluster.create(tmp_path / "cluster")
    try:
        await brokers.start()
        yield brokers
    finally:
        brokers.kill_all()


@pytest.mark.usefixtures("amqp_client_logs_quiet")
async def test_provider_fails_over_when_its_broker_node_is_killed(
    settings: Settings, cluster: BrokerCluster
) -> None:
    """SIGKILL of the provider's broker node: resumed elsewhere, 0 lost, 0 answered twice."""
    first, second, third = cluster.urls
    provider_settings = settings.model_copy(update={"amqp_url": f"{first},{second},{third}"})
    sender_settings = settings.model_copy(update={"amqp_url": f"{second},{third},{first}"})
    provider = ProviderProcess(provider_settings)
    try:
        async with _nodes(sender_settings) as make_node:
            await _stream_through_a_kill(make_node, provider, cluster, settings)
    finally:
        provider.terminate()


async def _stream_through_a_kill(
    make_node: MakeNode, provider: ProviderProcess, cluster: BrokerCluster, settings: Settings
) -> None:
    sender, sending = await stream_until_a_quarter_answered(make_node, provider, REQUESTS)
    killed = cluster.nodes[0]  # the provider's: the first of its addresses was up
    before = await answered(sender.ctx.store, await sent_ids(sender))
    killed_at = time.monotonic()
    killed.kill()
    gap = await _until_answers_grow(sender, before + RESUMED, seconds=120)
    print(
        f"\nprovider's broker node killed after {before} answers; {RESUMED} more answers "
        f"{gap:.1f} s later, with the killed node still down"
    )
    assert killed.pid is None, "the killed node must still be down"
    await killed.start()  # it rejoins the cluster with its data
    print(f"killed node back {time.monotonic() - killed_at:.1f} s after the kill")
    ids = await sending
    assert len(ids) == REQUESTS
    await wait_all_answered(sender, ids, 300)
    provider.terminate()
    await check_once_each(sender, settings, ids)


async def _until_answers_grow(sender: Node, target: int, seconds: float) -> float:
    """Seconds until the sender holds ``target`` answers (fails after ``seconds``)."""
    started = time.monotonic()
    while (done := await answered(sender.ctx.store, await sent_ids(sender))) < target:
        assert time.monotonic() - started < seconds, (
            f"only {done} answers {seconds:.0f} s after the kill: no failover"
        )
        await asyncio.sleep(0.2)
    return time.monotonic() - started
