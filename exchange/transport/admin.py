"""One-off broker operations for the CLI: reachability, dead letters, removing a topology.

Each opens its own short connection; a running node uses ``Bus`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aio_pika

from exchange.exceptions import BrokerUnavailable
from exchange.transport.addresses import broker_addresses, connect_any
from exchange.transport.names import BusNames
from exchange.transport.topology import remove_topology


async def check_broker(url: str) -> None:
    """Connect once (to any of the addresses in ``url``) and disconnect.

    Raises:
        Exception: whatever the last connection attempt raised.
    """
    connection = await connect_any(broker_addresses(url))
    await connection.close()


async def dead_letters(
    url: str, names: BusNames, party: str, *, take: bool
) -> list[tuple[bytes, dict[str, Any]]]:
    """Read a party's broker dead-letter queue; with ``take``, move each back to its inbox.

    Raises:
        BrokerUnavailable (broker-unavailable): the broker cannot be reached.
    """
    try:
        connection = await connect_any(broker_addresses(url))
    except Exception as exc:
        raise BrokerUnavailable(f"cannot reach RabbitMQ: {exc}; is it running?") from None
    found: list[tuple[bytes, dict[str, Any]]] = []
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.get_queue(names.dead_letters(party), ensure=True)
        bus = await channel.get_exchange(names.bus, ensure=True)
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            found.append((message.body, dict(message.headers or {})))
            if take:
                await bus.publish(
                    aio_pika.Message(
                        message.body,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        content_type=message.content_type,
                    ),
                    routing_key=party,
                    mandatory=True,
                    timeout=10,
                )
                await message.ack()
        # Without ``take`` the unacked messages go back to the queue when the channel closes.
    return found


async def drop_topology(url: str, names: BusNames, parties: Sequence[str]) -> None:
    """Delete the queues and exchanges of ``names`` (best effort: the broker may be gone)."""
    try:
        connection = await connect_any(broker_addresses(url))
    except Exception:
        return
    async with connection:
        await remove_topology(await connection.channel(), names, parties)
