"""Metadata-only parties over the real broker: content goes once finished, the record stays."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from exchange.exceptions import StateConflict
from exchange.node import IncomingRequest, Node
from exchange.node.store.base import PRUNED, InboxState, OutboxState
from exchange.signing import WireFormat
from tests.bus.conftest import FAST, MakeNode

pytestmark = pytest.mark.rabbit

METADATA_ONLY = replace(FAST, metadata_only=True, prune_interval=0.05)
TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}


async def pruned(node: Node, message_id: str, *, inbox: bool) -> None:
    """Wait until the node's copy of a message has lost its content."""
    store = node.ctx.store
    for _ in range(200):
        record = await (store.get_inbox(message_id) if inbox else store.get_outbox(message_id))
        if record is not None and record.wire == PRUNED:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{message_id} was not pruned")


async def test_metadata_only_parties_keep_no_content(make_node: MakeNode) -> None:
    """Both sides prune a finished request's wire; digests, states and audit stay; no decode."""
    provider = await make_node("improvement", METADATA_ONLY)
    sender = await make_node("single-center", METADATA_ONLY)

    @provider.handler("tree-felling-permit")
    async def decide(request: IncomingRequest) -> dict[str, Any]:
        return {"decision": "granted", "permit_number": "TF-9"}

    request_id = await sender.request("tree-felling-permit", TREES, wire_format=WireFormat.JSON)
    first = await sender.wait_answer(request_id, timeout=10)
    assert first.envelope is not None  # the live notice still carries the answer

    await pruned(provider, request_id, inbox=True)
    await pruned(sender, request_id, inbox=False)
    received = await provider.ctx.store.get_inbox(request_id)
    sent = await sender.ctx.store.get_outbox(request_id)
    assert received is not None
    assert sent is not None
    assert (received.state, sent.state) == (InboxState.ANSWERED, OutboxState.ANSWERED)
    assert received.digest == sent.digest
    assert received.receipt_wire  # kept: a duplicate still gets its receipt's record

    with pytest.raises(StateConflict, match="already answered"):
        await provider.respond(request_id, {"decision": "refused"})
    with pytest.raises(StateConflict, match="already answered"):
        await sender.cancel(request_id)
    response = [r for r in await sender.ctx.store.inbox_for(request_id) if r.kind == "response"]
    await pruned(sender, response[0].message_id, inbox=True)
    later = await sender.wait_answer(request_id, timeout=5)
    assert (later.kind, later.envelope) == ("response", None)

    events = [r.event.event for r in await provider.ctx.store.audit()]
    assert "responded" in events
    assert "content-pruned" in events
