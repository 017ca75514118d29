"""Deliveries from the Bus against the real broker: ack, nack with requeue, reject, once each."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import aio_pika
import aiormq
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


async def consume(
    queue: str,
    on_delivery: Callable[[Delivery], Awaitable[None]],
    bodies: Sequence[bytes],
    until: asyncio.Event,
    settle: float = 0.0,
) -> None:
    """Publish ``bodies`` to ``queue``, consume them with a Bus until ``until``, then stop.

    ``settle`` seconds more let the last ack frames reach the broker before the bus stops.
    """
    bus = Bus(AMQP_URL)
    bus.subscribe(queue, on_delivery)
    await bus.start()
    try:
        for body in bodies:
            await bus.publish(queue, queue, body, content_type="text/plain")
        await asyncio.wait_for(until.wait(), 10)
        await asyncio.sleep(settle)
    finally:
        await bus.stop()


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

    await consume(queue, on_delivery, (b"ack", b"nack", b"reject"), done)

    assert sorted(seen) == [b"ack", b"nack", b"nack", b"reject"]
    assert len(twice) == 2  # the ack of "ack" and the second "nack"
    assert await message_count(queue) == 0


async def test_a_fast_ack_never_covers_a_slow_delivery_below_it(queue: str) -> None:
    """A delivery still at work stays unacked under later acks and comes again after a close."""
    fast_acked = asyncio.Event()
    release_slow = asyncio.Event()

    async def on_delivery(delivery: Delivery) -> None:
        if delivery.body == b"slow":
            await release_slow.wait()  # its work never becomes durable while the bus runs
            return
        await delivery.ack()
        if delivery.body == b"fast-2":
            fast_acked.set()

    try:
        await consume(queue, on_delivery, (b"slow", b"fast-1", b"fast-2"), fast_acked)
    finally:
        release_slow.set()

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        message = await declared.get(no_ack=True, fail=False)
        assert message is not None
        assert (message.body, message.redelivered) == (b"slow", True)
        assert await declared.get(no_ack=True, fail=False) is None


async def test_acks_due_together_go_out_as_one_multiple_ack(
    queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acks due in one loop turn become a multiple ack; a reject among them stays exact."""
    frames: list[tuple[int, bool]] = []
    original = aiormq.Channel.basic_ack

    async def spy(self: aiormq.Channel, delivery_tag: int, multiple: bool = False) -> None:
        frames.append((delivery_tag, multiple))
        await original(self, delivery_tag, multiple=multiple)

    monkeypatch.setattr(aiormq.Channel, "basic_ack", spy)
    bodies = [b"1", b"2", b"reject", b"4", b"5", b"6"]
    arrived: list[bytes] = []
    done: list[bytes] = []
    gate = asyncio.Event()
    settled = asyncio.Event()

    async def on_delivery(delivery: Delivery) -> None:
        arrived.append(delivery.body)
        if len(arrived) == len(bodies):
            gate.set()
        await gate.wait()  # every handler finishes in the same turn
        if delivery.body == b"reject":
            await delivery.reject(requeue=False)
        else:
            await delivery.ack()
        done.append(delivery.body)
        if len(done) == len(bodies):
            settled.set()

    await consume(queue, on_delivery, bodies, settled, settle=0.2)

    assert any(multiple for _, multiple in frames), frames
    assert len(frames) < len(bodies) - 1, frames
    assert await message_count(queue) == 0


async def test_a_cancelled_ack_waiter_does_not_take_the_batch_down(queue: str) -> None:
    """Cancelling one subscriber while its ack is in a batch: every ack still goes out."""
    bodies = [b"1", b"2", b"3"]
    arrived: list[bytes] = []
    gate = asyncio.Event()
    acked: list[bytes] = []
    cancelled: list[bytes] = []
    finished = asyncio.Event()

    async def on_delivery(delivery: Delivery) -> None:
        arrived.append(delivery.body)
        if len(arrived) == len(bodies):
            gate.set()
        await gate.wait()  # all three ack in the same turn, so in one batch
        ack = asyncio.ensure_future(delivery.ack())
        if delivery.body == b"2":
            await asyncio.sleep(0)  # its ack is in the batch now
            ack.cancel()  # as when the node stops a handler mid-ack
        try:
            await ack
            acked.append(delivery.body)
        except asyncio.CancelledError:
            cancelled.append(delivery.body)
        if len(acked) + len(cancelled) == len(bodies):
            finished.set()

    await consume(queue, on_delivery, bodies, finished, settle=0.2)

    assert sorted(acked) == [b"1", b"3"]
    assert cancelled == [b"2"]
    assert await message_count(queue) == 0  # the cancelled waiter's ack was written too
