"""One request between two nodes over the real broker: receipt, status, response, audit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exchange.exceptions import AccessDenied, InvalidContent
from exchange.node import LATER, IncomingRequest, Later, Notice
from exchange.node.store.base import InboxState, OutboxState
from exchange.signing import WireFormat
from tests.bus.conftest import MakeNode

pytestmark = pytest.mark.rabbit

TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}


def trees(wire_format: WireFormat) -> dict[str, Any]:
    """The tree-felling payload as each format carries it (XML has no numbers)."""
    if wire_format is WireFormat.XML:
        return {**TREES, "trees": [{"species": "birch", "count": "2"}]}
    return TREES


async def events(node: Any) -> list[tuple[str, str | None]]:
    """(event, message_id) of every audit record of a node."""
    return [(r.event.event, r.event.message_id) for r in await node.ctx.store.audit()]


@pytest.mark.parametrize("wire_format", [WireFormat.XML, WireFormat.JSON])
async def test_request_receipt_status_response(
    make_node: MakeNode, wire_format: WireFormat
) -> None:
    """A request gets a bound receipt, a status and a response; both audit logs record it all."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    seen: list[Notice] = []
    sender.on_notice(seen.append)
    handed: asyncio.Queue[str] = asyncio.Queue()

    @provider.handler("tree-felling-permit")
    async def hand_over(request: IncomingRequest) -> dict[str, Any] | Later:
        await handed.put(request.message_id)
        return LATER

    request_id = await sender.request(
        "tree-felling-permit", trees(wire_format), case_id="KZN-1", wire_format=wire_format
    )
    assert await asyncio.wait_for(handed.get(), 10) == request_id
    await provider.status(request_id, "inspection", "inspector visits on Monday")
    await provider.respond(request_id, {"decision": "granted", "permit_number": "TF-1"})
    answer = await sender.wait_answer(request_id, timeout=10)

    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload == {"decision": "granted", "permit_number": "TF-1"}
    assert [n.kind for n in seen] == ["receipt", "status", "response"]
    sent = await sender.ctx.store.get_outbox(request_id)
    assert sent is not None
    assert sent.state is OutboxState.ANSWERED
    for notice in seen:
        assert notice.envelope is not None
        assert notice.envelope.request_digest == sent.digest
        assert notice.envelope.case_id == "KZN-1"
    received = await provider.ctx.store.get_inbox(request_id)
    assert received is not None
    assert received.state is InboxState.ANSWERED
    assert received.digest == sent.digest
    provider_events = [e for e, m in await events(provider)]
    for expected in ("received", "receipt-sent", "handed-over", "status-sent", "responded"):
        assert expected in provider_events
    sender_events = [e for e, m in await events(sender)]
    for expected in (
        "created",
        "confirmed",
        "receipt-received",
        "status-received",
        "response-received",
    ):
        assert expected in sender_events


async def test_handler_answer_is_the_response(make_node: MakeNode) -> None:
    """A handler that returns a payload answers at once, and runs once per request."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    runs: list[str] = []

    @provider.handler("tree-felling-permit")
    async def decide(request: IncomingRequest) -> dict[str, Any]:
        runs.append(request.message_id)
        return {"decision": "refused", "note": f"{len(request.payload['trees'])} tree(s)"}

    request_id = await sender.request(
        "tree-felling-permit", trees(WireFormat.JSON), wire_format=WireFormat.JSON
    )
    answer = await sender.wait_answer(request_id, timeout=10)
    assert answer.envelope is not None
    assert answer.envelope.payload == {"decision": "refused", "note": "1 tree(s)"}
    assert runs == [request_id]


async def test_caller_not_in_catalog_is_refused_before_sending(make_node: MakeNode) -> None:
    """A party that may not call a service cannot even send the request."""
    outsider = await make_node("land-property")
    with pytest.raises(AccessDenied) as info:
        await outsider.request("tree-felling-permit", TREES, wire_format=WireFormat.JSON)
    assert info.value.code == "access-denied"
    assert await outsider.ctx.store.audit() == []


async def test_payload_breaking_the_schema_is_refused_naming_the_field(make_node: MakeNode) -> None:
    """A payload that breaks the service schema is refused with the field's name."""
    sender = await make_node("single-center")
    bad = {**TREES, "trees": [{"species": "birch", "count": 0}]}
    with pytest.raises(InvalidContent) as info:
        await sender.request("tree-felling-permit", bad, wire_format=WireFormat.JSON)
    assert info.value.code == "invalid-content"
    assert "$.trees[0].count" in info.value.message
