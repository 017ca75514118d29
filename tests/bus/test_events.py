"""The node's typed event stream: every audited step, committed, in order, as ``EventName``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exchange.ledger.event import AuditRecord, EventName
from exchange.node import IncomingRequest, Node
from tests.bus.conftest import MakeNode

pytestmark = pytest.mark.rabbit

TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": "2"}],
}


async def _collect(node: Node, after: int, into: list[AuditRecord], until: EventName) -> None:
    async for record in node.follow(after, poll=5.0):
        into.append(record)
        if record.event.event is until:
            return


async def test_a_follower_sees_every_step_of_a_request_in_order(make_node: MakeNode) -> None:
    """From a cursor on: the sender's steps of one request, typed, in seq order, ending with
    the response; the page API gives the same records."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")

    @provider.handler("tree-felling-permit")
    async def grant(_request: IncomingRequest) -> dict[str, Any]:
        return {"decision": "granted", "permit_number": "TF-1"}

    start = await sender.last_event()
    seen: list[AuditRecord] = []
    follower = asyncio.create_task(_collect(sender, start, seen, EventName.RESPONSE_RECEIVED))
    await asyncio.sleep(0)  # subscribed before the request
    request_id = await sender.request("tree-felling-permit", TREES)
    await asyncio.wait_for(follower, 15)

    about = [
        r.event.event for r in seen if request_id in (r.event.message_id, r.event.correlation_id)
    ]
    assert about[0] is EventName.CREATED
    assert EventName.RECEIPT_RECEIVED in about
    assert about[-1] is EventName.RESPONSE_RECEIVED
    assert all(isinstance(r.event.event, EventName) for r in seen)
    assert [r.seq for r in seen] == list(range(start + 1, start + 1 + len(seen)))
    assert list(await sender.events(start, len(seen))) == seen
    assert await sender.last_event() >= seen[-1].seq
