"""The test's own RabbitMQ node: started, stopped by pid and started again with its data."""

from __future__ import annotations

import os

import aio_pika
import pytest

from tests._broker import BrokerNode

pytestmark = [pytest.mark.rabbit, pytest.mark.slow, pytest.mark.chaos]


async def _put(url: str, queue: str, body: bytes) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), queue
        )


async def _get(url: str, queue: str) -> bytes:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(
            queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        message = await declared.get(timeout=30)
        await message.ack()
        return message.body


async def test_a_durable_message_survives_a_stop_and_start_on_the_same_ports(
    own_broker: BrokerNode,
) -> None:
    """A persistent message in a quorum queue is there after the node is stopped and started."""
    first_pid, port = own_broker.pid, own_broker.amqp_port
    assert port != 5672
    await _put(own_broker.url, "survivor", b"kept")
    own_broker.stop()
    assert first_pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)  # stopped by its pid: the VM is gone
    with pytest.raises(aio_pika.exceptions.AMQPConnectionError):
        await aio_pika.connect(own_broker.url, timeout=5)
    await own_broker.start()
    assert own_broker.amqp_port == port
    assert own_broker.pid != first_pid
    assert await _get(own_broker.url, "survivor") == b"kept"


async def test_kill_ends_the_broker_process_by_its_pid(own_broker: BrokerNode) -> None:
    """SIGKILL ends the VM at once; the machine's broker is not touched."""
    pid = own_broker.pid
    own_broker.kill()
    assert pid is not None
    assert own_broker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    machine = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    await machine.close()
