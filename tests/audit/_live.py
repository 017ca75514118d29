"""Helpers of the audit tests against the real broker: three nodes, a case, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from exchange._clock import SYSTEM_CLOCK
from exchange.audit.central import CentralStore
from exchange.config import Settings
from exchange.ledger.event import AuditRecord
from exchange.node import Node, build_node
from exchange.node.factory import open_store
from exchange.node.handlers import IncomingRequest
from exchange.signing import WireFormat
from tests.bus.conftest import BUS_PARTIES, FAST

TREES = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}


async def until(
    check: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str = ""
) -> None:
    """Wait for ``check()`` to hold (polling), or fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'a condition'}")
        await asyncio.sleep(0.05)


def three_nodes(settings: Settings) -> dict[str, Node]:
    """single-center, improvement and land-property; improvement asks land-property first."""
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

    return nodes


async def run_case(sender: Node, case_id: str) -> str:
    """File a tree-felling request at ``sender``; return its id once answered."""
    request_id = await sender.request(
        "tree-felling-permit", TREES, case_id=case_id, wire_format=WireFormat.JSON
    )
    answer = await sender.wait_answer(request_id, timeout=20)
    assert answer.kind == "response"
    return request_id


async def local_records(settings: Settings) -> dict[str, list[AuditRecord]]:
    """Every party's audit chain as its own store holds it."""
    records: dict[str, list[AuditRecord]] = {}
    for party in BUS_PARTIES:
        store = open_store(party, settings, SYSTEM_CLOCK)
        await store.open()
        try:
            records[party] = list(await store.audit(limit=1_000_000))
        finally:
            await store.close()
    return records


async def caught_up(central: CentralStore, local: dict[str, list[AuditRecord]]) -> bool:
    """The collector holds every party's chain up to its local head."""
    for party, records in local.items():
        if await central.head(party) != (records[-1].seq, records[-1].hash):
            return False
    return True
