"""Deliveries from the Bus against the real broker: ack, nack with requeue, reject, once each."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from exchange.transport import Bus, Delivery

pytestmark = pytest.mark.rabbit

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def queue() -> AsyncIterator[str]:
    """A quorum queue of this test's own, bound to a durable exchange of the same name."""
    name = f"t{uuid.uuid4().hex[:8]}.deliveries"
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)
        declared = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await declared.bind(exchange, routing_key=name)
        yield name
        await channel.queue_delete(name)
        await channel.exchange_delete(name)


async def message_count(queue: str) -> int:
    """Messages ready in ``queue`` (none unacked: the bus has stopped)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def test_ack_nack_and_reject(queue: str) -> None:
    """An acked or rejected message is gone; a nacked one comes again; settling twice raises."""
    seen: list[bytes] = []
    twice: list[Exception] = []
    done = asyncio.Event()

    async def on_delivery(delivery: Delivery) -> None:
        seen.append(delivery.body)
        if delivery.body == b"nack" and seen.count(b"nack") == 1:
            await delivery.nack(requeue=True)
        elif delivery.body == b"reject":
            await delivery.reject(requeue=False)
        else:
            await delivery.ack()
            try:
                await delivery.ack()
            except RuntimeError as exc:
                twice.append(exc)
        if len(seen) == 4:
            done.set()

    bus = Bus(AMQP_URL)
    bus.subscribe(queue, on_delivery)
    await bus.start()
    try:
        for body in (b"ack", b"nack", b"reject"):
            await bus.publish(queue, queue, body, content_type="text/plain")
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await bus.stop()

    assert sorted(seen) == [b"ack", b"nack", b"nack", b"reject"]
    assert len(twice) == 2  # the ack of "ack" and the second "nack"
    assert await message_count(queue) == 0
