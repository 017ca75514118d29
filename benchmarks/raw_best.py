"""The best raw aio-pika this machine does: the physical limit users compare us against.

Publisher and consumer each in a process of its own (as two deployed parties are), a large
confirm window and prefetch, a quorum queue, persistent mandatory messages, manual acks.
Messages/s from the first publish until the consumer acked the last; both processes read
the same system-wide monotonic clock.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

WINDOW = 1024  # publishes in flight (confirms outstanding)
PREFETCH = 1024  # deliveries unacked at most


def best_raw(url: str, queue: str, count: int, size: int) -> float:
    """Messages/s of ``count`` messages of ``size`` bytes through ``queue`` (deleted after)."""
    spawn = multiprocessing.get_context("spawn")
    ready, started, ended = spawn.Event(), spawn.Value("d", 0.0), spawn.Value("d", 0.0)
    consumer = spawn.Process(target=_run_consumer, args=(url, queue, count, ready, ended))
    consumer.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the raw consumer process did not start")
        publisher = spawn.Process(target=_run_publisher, args=(url, queue, count, size, started))
        publisher.start()
        publisher.join(180)
        consumer.join(180)
        if publisher.exitcode != 0 or consumer.exitcode != 0:
            raise RuntimeError(
                f"a raw process failed (publisher {publisher.exitcode}, consumer "
                f"{consumer.exitcode})"
            )
        return float(count / (ended.value - started.value))
    finally:
        if consumer.is_alive():
            consumer.kill()
        asyncio.run(_delete(url, queue))


def _run_consumer(
    url: str, queue: str, count: int, ready: Event, ended: Synchronized[float]
) -> None:
    asyncio.run(_consume(url, queue, count, ready, ended))


def _run_publisher(
    url: str, queue: str, count: int, size: int, started: Synchronized[float]
) -> None:
    asyncio.run(_publish(url, queue, count, size, started))


async def _consume(
    url: str, queue: str, count: int, ready: Event, ended: Synchronized[float]
) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=PREFETCH)
        declared = await channel.declare_queue(
            queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        acked = 0
        done = asyncio.Event()

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal acked
            await message.ack()
            acked += 1
            if acked == count:
                ended.value = time.monotonic()
                done.set()

        await declared.consume(on_message, no_ack=False)
        ready.set()
        await asyncio.wait_for(done.wait(), 150)


async def _publish(
    url: str, queue: str, count: int, size: int, started: Synchronized[float]
) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        body = b"x" * size
        slots = asyncio.Semaphore(WINDOW)

        async def one() -> None:
            async with slots:
                message = aio_pika.Message(
                    body,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=uuid.uuid4().hex,
                )
                await channel.default_exchange.publish(message, queue, mandatory=True, timeout=60)

        started.value = time.monotonic()
        await asyncio.gather(*(one() for _ in range(count)))


async def _delete(url: str, queue: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
