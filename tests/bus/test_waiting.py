"""Waiting is not failing: a handler that waits for another department parks its request."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from exchange._clock import FrozenClock
from exchange.config import Settings
from exchange.deadlines import sla_report
from exchange.exceptions import BrokerUnavailable
from exchange.node import BROKER, LATER, IncomingRequest, Later, Node, Notice, Waiting, build_node
from exchange.node.factory import node_config
from exchange.node.parking import waiting_on
from exchange.node.store.base import InboxState, OutboxState
from exchange.testing import ThrowawayPKI
from tests.bus.conftest import BUS_PARTIES, FAST, MakeNode
from tests.bus.helpers import audit_events, eventually, wait_event

pytestmark = pytest.mark.rabbit

TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": "2"}],
}
PLOT = {"cadastral_number": "16:50:011105:12", "owner": "City of Kazan", "permitted_use": "park"}
GRANTED = {"decision": "granted", "permit_number": "TF-9"}


def asks_land_property(provider: Node, runs: list[int]) -> None:
    """Install a tree-felling handler that needs land-property's answer before it decides."""

    @provider.handler("tree-felling-permit")
    async def felling(request: IncomingRequest) -> dict[str, Any] | Waiting:
        runs.append(request.attempt)
        # Derived from the request's id: a re-run finds the question asked, never asks twice.
        question = await provider.request(
            "land-plot-info",
            {"cadastral_number": PLOT["cadastral_number"]},
            message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, request.message_id)),
        )
        answer = await provider.final_notice(question)
        if answer is None:
            return Waiting(on=question)
        assert answer.kind == "response"
        return GRANTED


def waits_for_land_property(provider: Node, land: Node) -> tuple[asyncio.Event, list[int]]:
    """Handlers on both: land-property answers once the event is set; the runs' attempts."""
    gate = asyncio.Event()
    runs: list[int] = []
    asks_land_property(provider, runs)

    @land.handler("land-plot-info")
    async def plot(_request: IncomingRequest) -> dict[str, Any]:
        await gate.wait()
        return PLOT

    return gate, runs


async def named(node: Node, event: str, message_id: str) -> list[Any]:
    """A node's audit events ``event`` about ``message_id``."""
    return [e for e in await audit_events(node, event) if e.message_id == message_id]


async def test_a_waiting_handler_is_parked_then_resumed_when_the_answer_comes(
    make_node: MakeNode,
) -> None:
    """Waiting parks the request without using attempts; the awaited answer resumes it."""
    budget = replace(FAST, handler_retry_delays=(0.1, 0.1), wait_recheck=0.1)
    provider = await make_node("improvement", budget)
    land = await make_node("land-property")
    sender = await make_node("single-center")
    gate, runs = waits_for_land_property(provider, land)
    try:
        request_id = await sender.request("tree-felling-permit", TREES)
        waiting = await wait_event(provider, "waiting", request_id)
        question = waiting.detail["on"]
        assert waiting.detail["attempt"] == 1
        assert await waiting_on(provider.ctx.store, request_id) == question
        # Several rechecks, and more than the whole retry budget, pass while it waits.
        await asyncio.sleep(10 * sum(budget.handler_retry_delays))
        record = await provider.ctx.store.get_inbox(request_id)
        assert record is not None
        assert record.state is InboxState.RECEIVED
        assert record.attempts == 0  # no failure counted
        assert runs == [1]  # not run again while the answer is missing
        assert await named(provider, "retried", request_id) == []
    finally:
        gate.set()
    answer = await sender.wait_answer(request_id, timeout=20)

    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload == GRANTED
    assert runs == [1, 2]  # the re-run knows it is one
    resumed = await named(provider, "resumed", request_id)
    assert [e.detail["on"] for e in resumed] == [question]
    assert await named(provider, "retried", request_id) == []
    assert await named(provider, "dead-lettered", request_id) == []
    assert await waiting_on(provider.ctx.store, request_id) is None


async def test_a_handler_that_finds_the_broker_unavailable_waits_without_using_its_budget(
    make_node: MakeNode,
) -> None:
    """BrokerUnavailable from a handler parks the request on the broker; it is not a failure."""
    provider = await make_node("improvement", replace(FAST, handler_retry_delays=(0.1,)))
    sender = await make_node("single-center")
    runs: list[int] = []

    @provider.handler("tree-felling-permit")
    async def publishes(request: IncomingRequest) -> dict[str, Any]:
        runs.append(request.attempt)
        if len(runs) <= 3:  # more times than the budget allows failures
            raise BrokerUnavailable("not connected to RabbitMQ")
        return GRANTED

    request_id = await sender.request("tree-felling-permit", TREES)
    answer = await sender.wait_answer(request_id, timeout=20)

    assert answer.kind == "response"
    assert runs == [1, 2, 3, 4]
    waits = await named(provider, "waiting", request_id)
    assert [e.detail["on"] for e in waits] == [BROKER] * 3
    assert await named(provider, "retried", request_id) == []
    record = await provider.ctx.store.get_inbox(request_id)
    assert record is not None
    assert record.attempts == 0


async def test_waiting_on_an_id_this_node_never_asked_counts_as_a_failure(
    make_node: MakeNode,
) -> None:
    """A wait nothing could end is refused: it uses the budget and ends in processing-failed."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")

    @provider.handler("tree-felling-permit")
    async def waits_forever(_request: IncomingRequest) -> Waiting:
        return Waiting(on="no-such-request")

    request_id = await sender.request("tree-felling-permit", TREES)
    answer = await sender.wait_answer(request_id, timeout=20)

    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "processing-failed"
    retried = await named(provider, "retried", request_id)
    assert len(retried) == len(FAST.handler_retry_delays)
    assert "WaitedOnUnknown" in retried[0].detail["error"]
    assert await named(provider, "waiting", request_id) == []


async def test_past_the_deadline_a_waiting_request_is_overdue_once_and_stays_open(
    settings: Settings, tmp_path: Path
) -> None:
    """Past its deadline a parked request gets one overdue status, stays open, is reported."""
    clock = FrozenClock(datetime.now(UTC))
    # A PKI of this test's own whose CRL outlives the weeks the clock moves on.
    pki = ThrowawayPKI.create(tmp_path / "pki", BUS_PARTIES, clock)
    pki.authority.write_crl(days=90)
    weeks = settings.model_copy(update={"certs_dir": pki.path})
    config = replace(FAST, wait_recheck=3600.0)
    async with AsyncExitStack() as nodes:
        provider, land, sender = [
            await nodes.enter_async_context(build_node(party, weeks, config=config, clock=clock))
            for party in ("improvement", "land-property", "single-center")
        ]
        await _overdue_once(clock, provider, land, sender)


async def _overdue_once(clock: FrozenClock, provider: Node, land: Node, sender: Node) -> None:
    statuses: list[Notice] = []
    sender.on_notice(lambda notice: statuses.append(notice) if notice.kind == "status" else None)
    gate, runs = waits_for_land_property(provider, land)
    try:
        request_id = await sender.request("tree-felling-permit", TREES)
        question = (await wait_event(provider, "waiting", request_id)).detail["on"]

        clock.advance(timedelta(days=20))  # tree felling: 14 calendar days
        provider.worker.wake()
        overdue = await wait_event(provider, "overdue", request_id)
        assert overdue.detail["waiting_on"] == question
        await eventually(lambda: _ready(statuses), what="the overdue status at the sender")

        # Looked at again past the deadline, and again: no second overdue status.
        for _ in range(2):
            before = await provider.ctx.store.get_inbox(request_id)
            assert before is not None
            assert before.next_attempt_at is not None
            clock.advance(timedelta(hours=2))  # past the recheck
            provider.worker.wake()
            await eventually(
                _rescheduled(provider, request_id, before.next_attempt_at),
                what="the parked request looked at again",
            )
        sent = [
            r
            for r in await provider.ctx.store.outbox_answering(request_id)
            if r.kind == "status" and b"overdue" in r.wire
        ]
        assert len(sent) == 1
        assert len(await named(provider, "overdue", request_id)) == 1
        assert [dict(n.envelope.payload or {}).get("state") for n in statuses if n.envelope] == [
            "overdue"
        ]

        record = await provider.ctx.store.get_inbox(request_id)
        assert record is not None
        assert record.state is InboxState.RECEIVED  # open: never faulted for waiting
        assert record.attempts == 0
        assert await sender.final_notice(request_id) is None
        report = await sla_report([provider.ctx.store], provider.ctx.catalog, clock)
        [row] = [r for r in report.open_requests if r.message_id == request_id]
        assert row.overdue
        assert row.waiting_on == question
        assert runs == [1]
    finally:
        gate.set()
    answer = await sender.wait_answer(request_id, timeout=20)
    assert answer.kind == "response"
    sent_request = await sender.ctx.store.get_outbox(request_id)
    assert sent_request is not None
    assert sent_request.state is OutboxState.ANSWERED


async def _ready(statuses: list[Notice]) -> bool:
    return bool(statuses)


def _rescheduled(node: Node, request_id: str, before: datetime) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        record = await node.ctx.store.get_inbox(request_id)
        later = record.next_attempt_at if record is not None else None
        return later is not None and later > before

    return check


async def test_the_retry_budget_is_configuration(settings: Settings, make_node: MakeNode) -> None:
    """EXCHANGE_HANDLER_RETRY_DELAYS sets how often a failing handler runs before it is dead."""
    configured = settings.model_copy(update={"handler_retry_delays": (0.1,)})
    config = replace(node_config(configured), poll_interval=0.05, publish_grace=1.0)
    provider = build_node("improvement", configured, config=config)
    sender = await make_node("single-center")
    runs: list[int] = []

    @provider.handler("tree-felling-permit")
    async def broken(request: IncomingRequest) -> dict[str, Any]:
        runs.append(request.attempt)
        raise RuntimeError("the handler's own bug")

    async with provider:
        request_id = await sender.request("tree-felling-permit", TREES)
        answer = await sender.wait_answer(request_id, timeout=20)

    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "processing-failed"
    assert runs == [1, 2]  # one delay configured: two runs, then dead


@pytest.mark.parametrize("handed_over", [True, False], ids=["handed-over", "no-handler"])
async def test_past_the_deadline_a_request_left_to_the_department_is_overdue_once(
    settings: Settings, tmp_path: Path, handed_over: bool
) -> None:
    """A request handed over (``LATER``) or with no handler here (a bridge answers it) gets
    one overdue status past its deadline, stays open, and is answered afterwards."""
    clock = FrozenClock(datetime.now(UTC))
    pki = ThrowawayPKI.create(tmp_path / "pki", BUS_PARTIES, clock)
    pki.authority.write_crl(days=90)
    weeks = settings.model_copy(update={"certs_dir": pki.path})
    config = replace(FAST, wait_recheck=3600.0)
    statuses: list[Notice] = []
    async with AsyncExitStack() as nodes:
        provider, sender = [
            await nodes.enter_async_context(build_node(party, weeks, config=config, clock=clock))
            for party in ("improvement", "single-center")
        ]
        sender.on_notice(lambda n: statuses.append(n) if n.kind == "status" else None)
        if handed_over:

            @provider.handler("tree-felling-permit")
            async def hand_over(_request: IncomingRequest) -> Later:
                return LATER

        request_id = await sender.request("tree-felling-permit", TREES)
        open_state = InboxState.WAITING if handed_over else InboxState.RECEIVED
        await eventually(_in_state(provider, request_id, open_state), what="the request stored")
        assert await provider.overdue.sweep() == 0  # not yet due

        clock.advance(timedelta(days=20))  # tree felling: 14 calendar days
        assert await provider.overdue.sweep() == 1
        assert await provider.overdue.sweep() == 0  # told once
        overdue = await wait_event(provider, "overdue", request_id)
        assert overdue.detail["waiting_on"] == "departmental-system"
        await eventually(lambda: _ready(statuses), what="the overdue status at the sender")
        assert [dict(n.envelope.payload or {}).get("state") for n in statuses if n.envelope] == [
            "overdue"
        ]
        assert await _in_state(provider, request_id, open_state)()
        assert await sender.final_notice(request_id) is None

        await provider.respond(request_id, GRANTED)
        answer = await sender.wait_answer(request_id, timeout=20)
        assert answer.kind == "response"
        assert await provider.overdue.sweep() == 0  # answered: nothing more to tell


def _in_state(node: Node, request_id: str, state: InboxState) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        record = await node.ctx.store.get_inbox(request_id)
        return record is not None and record.state is state

    return check
