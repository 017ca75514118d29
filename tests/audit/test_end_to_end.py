"""Nodes ship their audit logs to the collector over the real broker; trace, verify, export.

A case crosses three parties: single-center asks improvement, which asks land-property
before it answers. The collector is stopped midway; nothing is lost. The central store
then holds every node's chain as the node holds it, with signed checkpoints.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.audit.bundle import check_bundle, export_bundle
from exchange.audit.central import CentralStore, SQLiteCentralStore
from exchange.audit.central.postgres import PostgresCentralStore
from exchange.audit.collector import Collector
from exchange.audit.trace import trace
from exchange.audit.verify import verify_party
from exchange.config import Settings
from exchange.exceptions import BundleInvalid
from exchange.ledger.event import AuditRecord
from exchange.node import Node, build_node
from exchange.node.factory import open_store
from exchange.node.handlers import IncomingRequest
from exchange.node.store.base import Store
from exchange.pki.trust import TrustStore
from exchange.signing import WireFormat
from exchange.testing import ThrowawayPKI
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.bus.conftest import AMQP_URL, BUS_PARTIES, DATA, FAST, delete_topology
from tests.postgres import DSN

pytestmark = pytest.mark.rabbit

TREES = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}


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


async def _until(check: Any, timeout: float = 20.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _local(settings: Settings) -> dict[str, list[AuditRecord]]:
    records: dict[str, list[AuditRecord]] = {}
    for party in BUS_PARTIES:
        store = open_store(party, settings, SYSTEM_CLOCK)
        await store.open()
        try:
            records[party] = list(await store.audit(limit=1_000_000))
        finally:
            await store.close()
    return records


async def _case(sender: Node, case_id: str) -> str:
    request_id = await sender.request(
        "tree-felling-permit", TREES, case_id=case_id, wire_format=WireFormat.JSON
    )
    answer = await sender.wait_answer(request_id, timeout=20)
    assert answer.kind == "response"
    return request_id


async def test_case_across_three_parties(settings: Settings, central: CentralStore) -> None:
    """Every step reaches the collector despite a collector outage; trace, verify, bundle hold."""
    names = BusNames(settings.bus_prefix)
    trust = settings.certs_dir
    collector = Collector(Bus(AMQP_URL), names, central, None, SYSTEM_CLOCK)
    await collector.start()
    nodes = {p: build_node(p, settings, config=FAST) for p in BUS_PARTIES}
    improvement, land = nodes["improvement"], nodes["land-property"]

    @land.handler("land-plot-info")
    async def plot(request: IncomingRequest) -> dict[str, Any]:
        return {"cadastral_number": "16:50:011105:12", "owner": "city", "permitted_use": "park"}

    @improvement.handler("tree-felling-permit")
    async def permit(request: IncomingRequest) -> dict[str, Any]:
        asked = await improvement.request(
            "land-plot-info",
            {"cadastral_number": "16:50:011105:12"},
            case_id=request.envelope.case_id,
            wire_format=WireFormat.JSON,
        )
        answer = await improvement.wait_answer(asked, timeout=20)
        assert answer.kind == "response"
        return {"decision": "granted", "permit_number": "TF-7"}

    for node in nodes.values():
        await node.start()
    try:
        await _case(nodes["single-center"], "KZN-AUD-1")
        await collector.stop()  # the collector is down: nodes keep their events
        await _case(nodes["single-center"], "KZN-AUD-2")
        collector = Collector(Bus(AMQP_URL), names, central, None, SYSTEM_CLOCK)
        await collector.start()
    finally:
        for node in nodes.values():
            await node.stop()  # each signs a checkpoint at its head and ships it
    try:
        local = await _local(settings)

        async def caught_up() -> bool:
            for party, records in local.items():
                cps = await central.checkpoints(party)
                if await central.head(party) != (records[-1].seq, records[-1].hash):
                    return False
                if not cps or json.loads(cps[-1])["seq"] != records[-1].seq:
                    return False
            return True

        await _until(caught_up, what="the collector to hold every node's chain")
        trust_store = TrustStore.from_dir(trust)
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
