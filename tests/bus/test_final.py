"""Final is final over the real broker: late answers, cancel confirmations, refiling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exchange.audit.trace import build_timeline
from exchange.envelope.model import Kind
from exchange.exceptions import StateConflict
from exchange.node import LATER, IncomingRequest, Later, Notice, Reject
from exchange.node.store.base import InboxState, OutboxState
from tests.bus.conftest import MakeNode
from tests.bus.helpers import answer_unchecked, audit_events, wait_event

pytestmark = pytest.mark.rabbit

TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": "2"}],
}
GRANTED = {"decision": "granted", "permit_number": "TF-FINAL"}


async def test_response_after_a_fault_is_recorded_late_and_never_noticed(
    make_node: MakeNode,
) -> None:
    """A response or status after the final fault is on record as late-answer, not noticed.

    The trace shows them late.
    """
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    seen: list[Notice] = []
    sender.on_notice(seen.append)

    @provider.handler("tree-felling-permit")
    async def refuse(request: IncomingRequest) -> dict[str, Any]:
        raise Reject("access-denied", "not this district")

    request_id = await sender.request("tree-felling-permit", TREES, case_id="KZN-LATE-1")
    assert (await sender.wait_answer(request_id, timeout=10)).kind == "fault"

    progress = {"state": "inspection"}
    status = await answer_unchecked(provider, sender, request_id, Kind.STATUS, payload=progress)
    late = await answer_unchecked(provider, sender, request_id, Kind.RESPONSE, payload=GRANTED)
    # The same answer again: answers to one request are handled in delivery order, so once
    # its duplicate is on record, the late answer's handling is over.
    await provider.outbound.republish(late)
    await wait_event(sender, "duplicate", late.message_id)

    late_status, recorded = await audit_events(sender, "late-answer")
    assert (late_status.message_id, late_status.kind) == (status.message_id, "status")
    assert (recorded.message_id, recorded.correlation_id) == (late.message_id, request_id)
    assert (recorded.kind, recorded.digest) == ("response", late.digest)
    assert await audit_events(sender, "response-received") == []
    assert await audit_events(sender, "status-received") == []
    assert sorted(n.kind for n in seen) == ["fault", "receipt"]  # the receipt may come last
    final = await sender.wait_answer(request_id, timeout=1)
    assert final.kind == "fault"
    stored = await sender.ctx.store.get_inbox(late.message_id)
    assert stored is not None
    assert stored.state is InboxState.LATE
    assert await sender.final_notice(request_id) == final
    records = await sender.ctx.store.audit()
    shown = build_timeline(request_id, records, sender.ctx.clock.now()).to_json()
    assert [s["event"] for s in shown["steps"] if s["late"]] == ["late-answer"] * 2
    assert [(a["message_id"], a["kind"]) for a in shown["late_answers"]] == [
        (status.message_id, "status"),
        (late.message_id, "response"),
    ]


async def test_cancel_after_the_answer_leaves_the_answer_final(make_node: MakeNode) -> None:
    """A cancel of an answered request is only noted: no cancel fault follows the response."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    seen: list[Notice] = []
    sender.on_notice(seen.append)

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        return GRANTED

    request_id = await sender.request("tree-felling-permit", TREES)
    assert (await sender.wait_answer(request_id, timeout=10)).kind == "response"
    await sender.cancel(request_id)

    ignored = await wait_event(provider, "ignored")
    assert ignored.correlation_id == request_id
    assert ignored.kind == "cancel"
    assert await audit_events(provider, "cancelled") == []
    assert [e.kind for e in await audit_events(provider, "fault-sent")] == []
    record = await provider.ctx.store.get_inbox(request_id)
    assert record is not None
    assert record.state is InboxState.ANSWERED
    assert [n.kind for n in seen if n.final] == ["response"]


async def test_refile_sends_a_new_request_of_the_same_case(make_node: MakeNode) -> None:
    """Node.refile of a faulted request: new id, same case, service and payload; answered."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    handled: list[IncomingRequest] = []
    hold: asyncio.Queue[str] = asyncio.Queue()

    @provider.handler("tree-felling-permit")
    async def second_time_lucky(request: IncomingRequest) -> Later:
        handled.append(request)
        if len(handled) == 1:
            raise Reject("invalid-content", "the registry was down")
        await hold.put(request.message_id)
        return LATER

    first = await sender.request("tree-felling-permit", TREES, case_id="KZN-REFILE-1")
    assert (await sender.wait_answer(first, timeout=10)).kind == "fault"

    second = await sender.refile(first)
    assert await asyncio.wait_for(hold.get(), 10) == second
    with pytest.raises(StateConflict, match="still open"):
        await sender.refile(second)  # no answer yet: refiling would make two open requests
    await provider.respond(second, GRANTED)
    answer = await sender.wait_answer(second, timeout=10)

    assert answer.kind == "response"
    assert second != first
    assert handled[1].envelope.case_id == "KZN-REFILE-1"
    assert handled[1].envelope.service == handled[0].envelope.service
    assert handled[1].payload == handled[0].payload
    (created,) = [e for e in await audit_events(sender, "created") if e.message_id == second]
    assert created.detail["refiles"] == first
    old = await sender.ctx.store.get_outbox(first)
    assert old is not None
    assert old.state is OutboxState.ANSWERED
