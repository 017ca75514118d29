"""A broker outage longer than the retry budget, on the own broker: waited out, not failed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from exchange.node.store.base import InboxState, OutboxState
from tests._broker import BrokerNode
from tests.bus.conftest import FAST, MakeNode
from tests.bus.helpers import eventually, wait_event
from tests.bus.test_waiting import GRANTED, TREES, named, waits_for_land_property

pytestmark = [pytest.mark.rabbit, pytest.mark.slow, pytest.mark.chaos]

BUDGET = replace(FAST, handler_retry_delays=(0.2, 0.5), wait_recheck=0.3)


async def test_a_request_waiting_through_a_broker_outage_is_answered_not_faulted(
    make_own_node: MakeNode, own_broker: BrokerNode
) -> None:
    """The broker is down for many times the budget while a request waits; then it is answered."""
    provider = await make_own_node("improvement", BUDGET)
    land = await make_own_node("land-property", BUDGET)
    sender = await make_own_node("single-center", BUDGET)
    gate, runs = waits_for_land_property(provider, land)
    request_id = await sender.request("tree-felling-permit", TREES)
    question = (await wait_event(provider, "waiting", request_id, timeout=30)).detail["on"]
    await wait_event(land, "received", question, timeout=30)

    own_broker.stop()
    gate.set()  # land-property decides during the outage: its answer waits in its outbox

    async def answer_held_back() -> bool:
        held = await land.ctx.store.outbox_answering(question)
        return any(r.kind == "response" and r.state is OutboxState.PENDING for r in held)

    await eventually(answer_held_back, what="land-property's answer kept in its outbox")
    # The outage lasts ten times the whole retry budget, with rechecks all along.
    await asyncio.sleep(10 * sum(BUDGET.handler_retry_delays))
    record = await provider.ctx.store.get_inbox(request_id)
    assert record is not None
    assert record.state is InboxState.RECEIVED
    assert record.attempts == 0
    await own_broker.start()

    answer = await sender.wait_answer(request_id, timeout=120)
    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload == GRANTED
    assert runs == [1, 2]  # parked once, run again once the answer came
    assert await named(provider, "retried", request_id) == []
    assert await named(provider, "dead-lettered", request_id) == []
    record = await provider.ctx.store.get_inbox(request_id)
    assert record is not None
    assert record.state is InboxState.ANSWERED
    assert record.attempts == 0  # the budget is untouched
