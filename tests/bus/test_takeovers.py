"""Runs that took their process down count against a request's retry budget.

A dead process is stood in for by claims of owners that never finish: each claim by a new
owner after the lease ran out is a takeover, exactly as when a process is killed mid-run
(tests/bus/test_claims.py kills real processes; here the count is what is checked).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from exchange.ledger.event import EventName
from exchange.node import IncomingRequest, Node
from tests.bus.conftest import FAST, MakeNode
from tests.bus.helpers import audit_events, wait_event
from tests.bus.test_bad_traffic import TREES

BUDGET = len(FAST.handler_retry_delays)  # retries; one first run more


async def _die_holding(provider: Node, request_id: str, times: int) -> None:
    """``times`` processes claim the request and die: leases of zero length, never renewed."""
    for n in range(times):
        now = provider.ctx.clock.now()
        claimed = await provider.ctx.store.claim_inbox(f"dead-{n}", now, timedelta(0))
        assert [r.message_id for r in claimed] == [request_id]


@pytest.mark.rabbit
@pytest.mark.parametrize("deaths", [BUDGET, BUDGET + 1])
async def test_takeovers_use_the_retry_budget(make_node: MakeNode, deaths: int) -> None:
    """Within the budget the handler runs again, told its attempt; past it the request is
    dead and the requester gets processing-failed, the handler not run again."""
    provider = await make_node("improvement")  # no handler yet: nothing claims but the dead
    sender = await make_node("single-center")
    request_id = await sender.request("tree-felling-permit", TREES, case_id="KZN-T")
    await wait_event(provider, EventName.RECEIVED, request_id)
    await _die_holding(provider, request_id, deaths)
    attempts: list[int] = []

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        attempts.append(request.attempt)
        return {"decision": "granted", "permit_number": "TF-1"}

    provider.worker.wake()
    # Every claim after the first dead one's is a takeover, the worker's own included.
    if deaths <= BUDGET:
        await wait_event(sender, EventName.RESPONSE_RECEIVED)
        assert attempts == [deaths + 1]
    else:
        fault = await wait_event(sender, EventName.FAULT_RECEIVED)
        assert fault.correlation_id == request_id
        assert fault.detail.get("fault") == "processing-failed", fault.detail
        assert attempts == []
        assert await audit_events(provider, EventName.DEAD_LETTERED)
