"""Failures over the real broker: handler retries, dead requests, refusals, lost recipients."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aio_pika
import pytest

from exchange.config import Settings
from exchange.envelope.model import Kind, ServiceRef
from exchange.exceptions import StateConflict, Unroutable
from exchange.node import LATER, IncomingRequest, Later, Node, Notice, Reject
from exchange.node.store.base import InboxState, OutboxState
from exchange.signing import WireFormat
from exchange.transport.names import BusNames
from exchange.transport.topology import apply_topology
from tests.bus.conftest import AMQP_URL, BUS_PARTIES, FAST, MakeNode
from tests.bus.helpers import audit_events, eventually, wait_event

pytestmark = pytest.mark.rabbit

TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": "2"}],
}
GRANTED = {"decision": "granted", "permit_number": "TF-9"}


async def inbox_state(node: Node, message_id: str) -> InboxState | None:
    """The state of a request in a node's inbox, or None."""
    record = await node.ctx.store.get_inbox(message_id)
    return None if record is None else record.state


async def outbox_state(node: Node, message_id: str) -> OutboxState | None:
    """The state of a message in a node's outbox, or None."""
    record = await node.ctx.store.get_outbox(message_id)
    return None if record is None else record.state


async def named(node: Node, event: str, message_id: str) -> list[Any]:
    """A node's audit events ``event`` about ``message_id``."""
    return [e for e in await audit_events(node, event) if e.message_id == message_id]


async def test_handler_that_fails_twice_then_succeeds_answers(make_node: MakeNode) -> None:
    """A handler's failures are retried with back-off until it answers."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    attempts: list[int] = []

    @provider.handler("tree-felling-permit")
    async def flaky(request: IncomingRequest) -> dict[str, Any]:
        attempts.append(request.attempt)
        if len(attempts) <= 2:
            raise RuntimeError(f"registry down (attempt {request.attempt})")
        return GRANTED

    request_id = await sender.request("tree-felling-permit", TREES)
    answer = await sender.wait_answer(request_id, timeout=10)

    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload == GRANTED
    assert attempts == [1, 2, 3]
    retried = await named(provider, "retried", request_id)
    assert [e.detail["attempt"] for e in retried] == [1, 2]
    assert "registry down" in retried[0].detail["error"]
    assert await inbox_state(provider, request_id) is InboxState.ANSWERED
    assert await named(provider, "dead-lettered", request_id) == []


async def test_handler_that_always_fails_leaves_the_request_dead(make_node: MakeNode) -> None:
    """Past the retry limit the request is dead and the sender gets processing-failed."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    attempts: list[int] = []

    @provider.handler("tree-felling-permit")
    async def broken(request: IncomingRequest) -> dict[str, Any]:
        attempts.append(request.attempt)
        raise RuntimeError("always broken")

    request_id = await sender.request("tree-felling-permit", TREES)
    answer = await sender.wait_answer(request_id, timeout=10)

    assert answer.kind == "fault"
    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "processing-failed"
    assert attempts == list(range(1, len(FAST.handler_retry_delays) + 2))
    assert await inbox_state(provider, request_id) is InboxState.DEAD
    assert len(await named(provider, "retried", request_id)) == len(FAST.handler_retry_delays)
    dead = [e for e in await audit_events(provider, "dead-lettered") if e.kind == "fault"]
    assert [e.correlation_id for e in dead] == [request_id]
    assert await outbox_state(sender, request_id) is OutboxState.ANSWERED
    await asyncio.sleep(3 * max(FAST.handler_retry_delays))  # no further attempt comes
    assert len(attempts) == len(FAST.handler_retry_delays) + 1


@pytest.mark.parametrize("code", ["invalid-content", "access-denied"])
async def test_handler_reject_is_a_fault_without_retry(make_node: MakeNode, code: str) -> None:
    """A handler's Reject becomes a signed fault with its code at once, never retried."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    attempts: list[int] = []

    @provider.handler("tree-felling-permit")
    async def refuse(request: IncomingRequest) -> dict[str, Any]:
        attempts.append(request.attempt)
        raise Reject(code, "the registry says no")

    request_id = await sender.request("tree-felling-permit", TREES)
    answer = await sender.wait_answer(request_id, timeout=10)

    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == code
    assert answer.envelope.fault.text == "the registry says no"
    assert await inbox_state(provider, request_id) is InboxState.REJECTED
    assert await named(provider, "retried", request_id) == []
    await asyncio.sleep(3 * max(FAST.handler_retry_delays))
    assert attempts == [1]


async def test_unroutable_recipient_is_refused_at_publish(
    make_node: MakeNode, settings: Settings
) -> None:
    """With no inbox for the provider, the request raises Unroutable and is final, reported."""
    names = BusNames(settings.bus_prefix)
    sender = await make_node("single-center")
    seen: list[Notice] = []
    sender.on_notice(seen.append)
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(names.inbox("land-property"))
        try:
            with pytest.raises(Unroutable) as info:
                await sender.request("land-plot-info", {"cadastral_number": "16:50:011105:12"})
        finally:
            await apply_topology(channel, names, BUS_PARTIES)

    assert info.value.code == "unroutable"
    assert [n.kind for n in seen] == ["undelivered"]
    request_id = seen[0].request_id
    assert await outbox_state(sender, request_id) is OutboxState.UNDELIVERED
    undelivered = await named(sender, "undelivered", request_id)
    assert len(undelivered) == 1
    assert "land-property" in undelivered[0].detail["reason"]
    final = await sender.wait_answer(request_id, timeout=1)
    assert final.kind == "undelivered"


async def test_confirm_after_the_receipt_leaves_it_receipted(
    make_node: MakeNode, settings: Settings
) -> None:
    """A broker confirm written after the receipt moves nothing back, is still on record.

    The rest of its batch lands as usual.
    """
    sender = await make_node("single-center")
    records = [
        sender.outbound.seal(
            sender.outbound.envelope(
                Kind.REQUEST,
                service=ServiceRef(code="land-plot-info", version="1"),
                recipient="land-property",
                expires_at=sender.ctx.clock.now() + timedelta(hours=1),
                payload={"cadastral_number": "16:50:011105:12"},
            ),
            WireFormat.XML,
        )
        for _ in range(2)
    ]
    async with sender.ctx.store.transaction() as tx:
        for record in records:
            tx.add_outbox(record)
    overtaken, plain = records
    async with sender.ctx.store.transaction() as tx:  # as if its receipt came first
        tx.set_outbox_state(overtaken.message_id, OutboxState.RECEIPTED)
    try:
        assert all(await asyncio.gather(*(sender.outbound.publish(r) for r in records)))
        await sender.outbound.drain()
    finally:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            inbox = BusNames(settings.bus_prefix).inbox("land-property")
            await (await (await connection.channel()).get_queue(inbox)).purge()

    assert await outbox_state(sender, overtaken.message_id) is OutboxState.RECEIPTED
    confirmed = await named(sender, "confirmed", overtaken.message_id)
    assert [e.detail.get("overtaken") for e in confirmed] == [True]
    assert await outbox_state(sender, plain.message_id) is OutboxState.SENT
    assert len(await named(sender, "confirmed", plain.message_id)) == 1


async def test_request_without_receipt_is_resent_until_it_expires(make_node: MakeNode) -> None:
    """A request nobody receipts is resent as is until it expires, then undelivered.

    A provider started later gets every copy: the first is refused as expired, the rest are
    duplicates; the handler never runs. Its fault comes after the final undelivered: it is
    recorded as a late answer and never noticed.
    """
    sender = await make_node("single-center")
    seen: list[Notice] = []
    sender.on_notice(seen.append)
    request_id = await sender.request("tree-felling-permit", TREES, expires_in=timedelta(seconds=3))

    async def undelivered() -> bool:
        return await outbox_state(sender, request_id) is OutboxState.UNDELIVERED

    await eventually(undelivered, 10, "the request to become undelivered")
    assert [n.kind for n in seen] == ["undelivered"]
    resent = await named(sender, "resent", request_id)
    assert len(resent) >= 1
    sent_record = await sender.ctx.store.get_outbox(request_id)
    assert sent_record is not None
    assert all(e.digest == sent_record.digest for e in resent)
    copies = len(await named(sender, "confirmed", request_id)) + len(resent)

    provider = await make_node("improvement")
    calls: list[str] = []

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        calls.append(request.message_id)
        return GRANTED

    async def all_copies_seen() -> bool:
        rejected = await named(provider, "rejected", request_id)
        duplicates = await named(provider, "duplicate", request_id)
        return len(rejected) + len(duplicates) == copies

    await eventually(all_copies_seen, 10, "the provider to see every copy")
    rejected = await named(provider, "rejected", request_id)
    assert [e.detail["code"] for e in rejected] == ["expired"]
    assert await inbox_state(provider, request_id) is InboxState.REJECTED

    late = await wait_event(sender, "late-answer")
    assert late.correlation_id == request_id
    assert late.kind == "fault"
    assert late.detail["fault"] == "expired"
    assert await named(sender, "fault-received", late.message_id or "") == []
    assert [n.kind for n in seen] == ["undelivered"]
    assert (await sender.wait_answer(request_id, timeout=1)).kind == "undelivered"
    assert await outbox_state(sender, request_id) is OutboxState.UNDELIVERED
    assert calls == []


async def test_cancelled_request_cannot_be_answered(make_node: MakeNode) -> None:
    """A sender's cancel closes a handed-over request; a later respond is a state conflict.

    The provider confirms the cancel with a fault ``cancelled``, the request's final answer.
    """
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    handed: asyncio.Queue[str] = asyncio.Queue()

    @provider.handler("tree-felling-permit")
    async def hand_over(request: IncomingRequest) -> dict[str, Any] | Later:
        await handed.put(request.message_id)
        return LATER

    request_id = await sender.request("tree-felling-permit", TREES)
    seen: list[Notice] = []
    sender.on_notice(seen.append)
    assert await asyncio.wait_for(handed.get(), 10) == request_id

    async def waiting() -> bool:
        return await inbox_state(provider, request_id) is InboxState.WAITING

    await eventually(waiting, 10, "the request to be handed over")
    await sender.cancel(request_id)

    async def cancelled() -> bool:
        return await inbox_state(provider, request_id) is InboxState.CANCELLED

    await eventually(cancelled, 10, "the request to be cancelled")
    with pytest.raises(StateConflict):
        await provider.respond(request_id, GRANTED)
    assert len(await named(provider, "cancelled", await _cancel_id(sender, request_id))) == 1
    assert await named(provider, "responded", request_id) == []
    final = await sender.wait_answer(request_id, timeout=10)
    assert final.kind == "fault"
    assert final.envelope is not None
    assert final.envelope.fault is not None
    assert final.envelope.fault.code == "cancelled"
    assert await outbox_state(sender, request_id) is OutboxState.ANSWERED
    assert [n.kind for n in seen if n.final] == ["fault"]


async def _cancel_id(sender: Node, request_id: str) -> str:
    cancels = [
        e
        for e in await audit_events(sender, "cancel-sent")
        if e.correlation_id == request_id and e.kind == "cancel"
    ]
    assert len(cancels) == 1
    assert cancels[0].message_id is not None
    return cancels[0].message_id
