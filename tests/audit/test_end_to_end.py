"""Nodes ship their audit logs to the collector over the real broker; trace, verify, export.

A case crosses three parties: single-center asks improvement, which asks land-property
before it answers. The collector is stopped midway; nothing is lost. The central store
then holds every node's chain as the node holds it, with signed checkpoints.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.audit.central import CentralStore
from exchange.audit.collector import Collector
from exchange.audit.trace import trace
from exchange.audit.verify import verify_party
from exchange.config import Settings
from exchange.evidence.bundle import check_bundle, export_bundle
from exchange.exceptions import BundleInvalid
from exchange.node.factory import open_store
from exchange.node.store.base import Store
from exchange.pki.trust import TrustStore
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.audit._live import caught_up, local_records, run_case, three_nodes, until
from tests.bus.conftest import AMQP_URL, BUS_PARTIES

pytestmark = pytest.mark.rabbit


async def test_case_across_three_parties(settings: Settings, central: CentralStore) -> None:
    """Every step reaches the collector despite a collector outage; trace, verify, bundle hold."""
    names = BusNames(settings.bus_prefix)
    trust_store = TrustStore.from_dir(settings.certs_dir)
    collector = Collector(Bus(AMQP_URL), names, central, trust_store, SYSTEM_CLOCK)
    await collector.start()
    nodes = three_nodes(settings)
    for node in nodes.values():
        await node.start()
    try:
        await run_case(nodes["single-center"], "KZN-AUD-1")
        await collector.stop()  # the collector is down: nodes keep their events
        await run_case(nodes["single-center"], "KZN-AUD-2")
        collector = Collector(Bus(AMQP_URL), names, central, trust_store, SYSTEM_CLOCK)
        await collector.start()
    finally:
        for node in nodes.values():
            await node.stop()  # each signs a checkpoint at its head and ships it
    try:
        local = await local_records(settings)

        async def all_in() -> bool:
            for party, records in local.items():
                cps = await central.checkpoints(party)
                if not cps or json.loads(cps[-1])["seq"] != records[-1].seq:
                    return False
            return await caught_up(central, local)

        await until(all_in, what="the collector to hold every node's chain")
        for party, records in local.items():
            assert list(await central.records(party, limit=1_000_000)) == records

            async def fetch(since: int, limit: int, party: str = party) -> Any:
                return await central.records(party, since, limit)

            report = await verify_party(party, fetch, await central.checkpoints(party), trust_store)
            assert report.ok, report.problems
            assert report.checkpoints >= 1
        assert await central.findings() == []

        timeline = await trace(central, "KZN-AUD-1", SYSTEM_CLOCK.now())
        expected = sorted(
            (r for records in local.values() for r in records if r.event.case_id == "KZN-AUD-1"),
            key=lambda r: (r.at, r.party, r.seq),
        )
        assert timeline.steps == expected
        assert {r.party for r in timeline.steps} == set(BUS_PARTIES)
        events = [(r.party, str(r.event.event)) for r in timeline.steps]
        assert events.index(("improvement", "received")) < events.index(
            ("land-property", "received")
        )
        assert events.index(("land-property", "responded")) < events.index(
            ("improvement", "responded")
        )
        waits = timeline.waiting_by_party()
        assert set(waits) == {"improvement", "land-property"}
        assert waits["improvement"] > waits["land-property"] > 0

        stores: dict[str, Store] = {}
        for party in BUS_PARTIES:
            stores[party] = open_store(party, settings, SYSTEM_CLOCK)
            await stores[party].open()
        try:
            bundle = await export_bundle(central, "KZN-AUD-1", stores, SYSTEM_CLOCK.now())
            for store in stores.values():  # every party drops the content: metadata only
                await store.prune_messages(SYSTEM_CLOCK.now() + timedelta(seconds=1))
            bare = await export_bundle(central, "KZN-AUD-1", stores, SYSTEM_CLOCK.now())
        finally:
            for store in stores.values():
                await store.close()
        raw = json.dumps(bundle).encode()
        proved = check_bundle(raw, trust_store)
        kinds = {json.loads(base64.b64decode(e["wire"]))["payload"] for e in bundle["envelopes"]}
        assert len(kinds) == len(bundle["envelopes"]) >= 6
        assert set(proved.parties) == set(BUS_PARTIES)
        assert proved.unanchored == []
        assert bundle["pruned"] == []
        pruned = sorted(p["message_id"] for p in bare["pruned"])
        assert pruned
        assert set(pruned) | {e["message_id"] for e in bare["envelopes"]} == {
            e["message_id"] for e in bundle["envelopes"]
        }
        assert check_bundle(json.dumps(bare).encode(), trust_store).pruned == pruned
        wire = bytearray(base64.b64decode(bundle["envelopes"][0]["wire"]))
        wire[len(wire) // 2] ^= 1
        bundle["envelopes"][0]["wire"] = base64.b64encode(bytes(wire)).decode()
        with pytest.raises(BundleInvalid):
            check_bundle(json.dumps(bundle).encode(), trust_store)
    finally:
        await collector.stop()
