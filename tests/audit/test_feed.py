"""The central feed: what the collector stores, followed live by a process that is no node."""

from __future__ import annotations

import asyncio

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.audit.central import CentralStore
from exchange.audit.collector import Collector
from exchange.audit.feed import CentralFeed
from exchange.config import Settings
from exchange.exceptions import BrokerUnavailable
from exchange.ledger.event import AuditRecord, EventName
from exchange.pki.trust import TrustStore
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.audit._live import caught_up, local_records, run_case, three_nodes, until
from tests.bus.conftest import AMQP_URL

pytestmark = pytest.mark.rabbit


async def test_a_follower_gets_every_stored_record_once_verified_and_typed(
    settings: Settings, central: CentralStore
) -> None:
    """A case across three parties: the feed yields exactly the records the central log
    holds for them (those stored after it opened), each once, in seq order per party."""
    names = BusNames(settings.bus_prefix)
    trust = TrustStore.from_dir(settings.certs_dir)
    collector = Collector(Bus(AMQP_URL), names, central, trust, SYSTEM_CLOCK)
    await collector.start()  # declares the topology, the feed's exchange too
    feed = CentralFeed(AMQP_URL, names, trust)
    await feed.open()
    seen: list[AuditRecord] = []

    async def follow() -> None:
        async for record in feed.records():
            seen.append(record)

    follower = asyncio.create_task(follow())
    nodes = three_nodes(settings)
    try:
        for node in nodes.values():
            await node.start()
        await run_case(nodes["single-center"], "KZN-FEED-1")
    finally:
        for node in nodes.values():
            await node.stop()
    try:
        local = await local_records(settings)

        async def all_in() -> bool:
            return await caught_up(central, local) and len(seen) == sum(map(len, local.values()))

        await until(all_in, what="the feed to carry every stored record")
        for party, records in local.items():
            assert [r for r in seen if r.party == party] == records
        assert all(isinstance(r.event.event, EventName) for r in seen)
        assert any(r.event.case_id == "KZN-FEED-1" for r in seen)
    finally:
        follower.cancel()
        await feed.close()
        await collector.stop()


async def test_following_a_broker_without_the_feed_says_what_to_do(settings: Settings) -> None:
    """No exchange declared under the prefix: a named error, not a library traceback."""
    names = BusNames(settings.bus_prefix + "nothing-here.")
    feed = CentralFeed(AMQP_URL, names, TrustStore.from_dir(settings.certs_dir))
    with pytest.raises(BrokerUnavailable, match="topology"):
        await feed.open()
