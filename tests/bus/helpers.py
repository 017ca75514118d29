"""Helpers for the broker tests: waiting on a condition, audit lookups, raw broker access."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from exchange.envelope.model import Envelope, Fault, Kind
from exchange.ledger.event import AuditEvent
from exchange.node import Node
from exchange.node.store.base import OutboxRecord, OutboxState
from exchange.signing import sniff_format
from exchange.signing.stored import decode_stored
from tests.bus.conftest import AMQP_URL

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout: float = 10.0, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def audit_events(node: Node, event: str | None = None) -> list[AuditEvent]:
    """A node's audit events (only those named ``event`` if given), in order."""
    records = await node.ctx.store.audit()
    return [r.event for r in records if event is None or r.event.event == event]


async def wait_event(
    node: Node, event: str, message_id: str | None = None, timeout: float = 10.0
) -> AuditEvent:
    """Wait for the first audit event ``event`` (about ``message_id`` if given) of a node."""

    async def found() -> AuditEvent | None:
        for item in await audit_events(node, event):
            if message_id is None or item.message_id == message_id:
                return item
        return None

    return await eventually(found, timeout, f"{node.party} audit event {event!r}")


async def store_as_sent(node: Node, envelope: Envelope, wire: bytes) -> OutboxRecord:
    """Put a request signed outside the node in its outbox, as sent and not due for a resend.

    Answers to it are then bound to a request of the node's own, as if the node had sent it.
    """
    now = node.ctx.clock.now()
    record = replace(
        node.outbound.record(envelope, wire),
        state=OutboxState.SENT,
        attempts=1,
        next_attempt_at=now + timedelta(hours=1),
    )
    async with node.ctx.store.transaction() as tx:
        tx.add_outbox(record)
    return record


async def answer_unchecked(
    provider: Node,
    requester: Node,
    request_id: str,
    kind: Kind,
    *,
    payload: dict[str, Any] | None = None,
    fault: Fault | None = None,
) -> OutboxRecord:
    """Sign an answer to ``requester``'s request and publish it, past the provider's store.

    As a misbehaving provider (or one from before answers were final) would: the provider's
    state is neither checked nor changed. Returns the answer as signed.
    """
    request = await requester.ctx.store.get_outbox(request_id)
    assert request is not None, f"{requester.party} sent no request {request_id}"
    envelope = provider.outbound.envelope(
        kind,
        service=decode_stored(request.wire).service,
        recipient=requester.party,
        expires_at=provider.ctx.clock.now() + timedelta(hours=1),
        answering=(request.message_id, request.digest),
        case_id=request.case_id,
        payload=payload,
        fault=fault,
    )
    typed = provider.ctx.catalog.typed(envelope)
    answer = provider.outbound.seal(typed, sniff_format(request.wire))
    await provider.outbound.republish(answer)
    return answer


class RawBus:
    """A plain aio-pika client beside the nodes: inject onto the bus, read queues directly."""

    def __init__(self, connection: aio_pika.abc.AbstractConnection, bus: str) -> None:
        self.connection = connection
        self.bus = bus

    @classmethod
    async def connect(cls, bus: str, url: str = AMQP_URL) -> RawBus:
        """Connect with publisher confirms to the bus exchange ``bus``."""
        return cls(await aio_pika.connect(url, timeout=5), bus)

    async def close(self) -> None:
        """Close the connection."""
        await self.connection.close()

    async def publish(self, routing_key: str, body: bytes) -> None:
        """Publish raw bytes to the bus exchange (persistent, mandatory, confirmed)."""
        async with self.connection.channel(
            publisher_confirms=True, on_return_raises=True
        ) as channel:
            exchange = await channel.get_exchange(self.bus, ensure=True)
            await exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key,
                mandatory=True,
                timeout=10,
            )

    async def take_all(self, queue: str) -> list[AbstractIncomingMessage]:
        """Take (and ack) every message waiting in ``queue`` right now."""
        taken: list[AbstractIncomingMessage] = []
        async with self.connection.channel() as channel:
            source = await channel.get_queue(queue, ensure=True)
            while (message := await source.get(no_ack=True, fail=False)) is not None:
                taken.append(message)
        return taken

    async def take_until(
        self,
        queue: str,
        done: Callable[[list[AbstractIncomingMessage]], bool],
        timeout: float = 10.0,
    ) -> list[AbstractIncomingMessage]:
        """Take messages from ``queue`` until ``done`` says enough arrived (or fail on timeout)."""
        taken: list[AbstractIncomingMessage] = []

        async def enough() -> bool:
            taken.extend(await self.take_all(queue))
            return done(taken)

        await eventually(enough, timeout, f"messages on {queue}")
        return taken
