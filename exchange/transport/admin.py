"""One-off broker operations for the CLI: reachability, dead letters, removing a topology.

Each opens its own short connection; a running node uses ``Bus`` instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue

from exchange.exceptions import BrokerRefused, BrokerUnavailable, PublishNotConfirmed
from exchange.transport.addresses import broker_addresses, connect_any
from exchange.transport.names import BusNames
from exchange.transport.topology import remove_topology


async def check_broker(url: str) -> None:
    """Connect once (to any of the addresses in ``url``) and disconnect.

    Raises:
        BrokerRefused (broker-refused): every address refused the login or the vhost.
        Exception: whatever else the last attempt raised (unreachable, timeout).
    """
    connection = await connect_any(broker_addresses(url))
    await connection.close()


async def dead_letters(
    url: str, names: BusNames, party: str, *, take: bool, limit: int | None = None
) -> list[tuple[bytes, dict[str, Any]]]:
    """Read a party's broker dead-letter queue (its first ``limit`` letters); with ``take``,
    move each back to its inbox.

    Raises:
        BrokerUnavailable (broker-unavailable): the broker cannot be reached.
        PublishNotConfirmed (publish-not-confirmed): one could not be moved back.
    """
    found: list[tuple[bytes, dict[str, Any]]] = []
    async with _dead_letter_queue(url, names, party) as (queue, bus):
        while (limit is None or len(found) < limit) and (
            message := await queue.get(no_ack=False, fail=False)
        ) is not None:
            found.append((message.body, dict(message.headers or {})))
            if take:
                await _back_to_inbox(bus, message, party)
        # Without ``take`` the unacked messages go back to the queue when the channel closes.
    return found


async def take_dead_letter(
    url: str, names: BusNames, party: str, pick: Callable[[bytes], Awaitable[bool]]
) -> bytes | None:
    """Move the first of ``party``'s broker dead letters that ``pick`` accepts back to its
    inbox (a confirmed publish, then the ack); return its body, or None if none is picked.

    The others stay in the dead-letter queue.

    Raises:
        BrokerUnavailable (broker-unavailable): the broker cannot be reached.
        PublishNotConfirmed (publish-not-confirmed): it could not be moved; it stays put.
    """
    async with _dead_letter_queue(url, names, party) as (queue, bus):
        # Unacked, the messages looked at go back to the queue when the channel closes.
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            if await pick(message.body):
                await _back_to_inbox(bus, message, party)
                return message.body
    return None


@contextlib.asynccontextmanager
async def _dead_letter_queue(
    url: str, names: BusNames, party: str
) -> AsyncIterator[tuple[AbstractQueue, AbstractExchange]]:
    """A short connection's view of ``party``'s dead-letter queue and the bus exchange."""
    try:
        connection = await connect_any(broker_addresses(url))
    except BrokerRefused:
        raise
    except Exception as exc:
        raise BrokerUnavailable(f"cannot reach RabbitMQ: {exc}; is it running?") from None
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.get_queue(names.dead_letters(party), ensure=True)
        yield queue, await channel.get_exchange(names.bus, ensure=True)


async def _back_to_inbox(
    bus: AbstractExchange, message: AbstractIncomingMessage, party: str
) -> None:
    """Publish a dead letter to ``party``'s inbox (confirmed), then ack it."""
    try:
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
    except Exception as exc:  # returned, nacked or timed out: the dead letter stays
        raise PublishNotConfirmed(
            f"could not move a dead letter back to {party}'s inbox: {exc!r}", party=party
        ) from None
    await message.ack()


async def drop_topology(url: str, names: BusNames, parties: Sequence[str]) -> None:
    """Delete the queues and exchanges of ``names`` (best effort: the broker may be gone)."""
    try:
        connection = await connect_any(broker_addresses(url))
    except Exception:
        return
    async with connection:
        await remove_topology(await connection.channel(), names, parties)
