"""Following a fanout exchange live: a queue of one's own that lives as long as the connection.

For watchers (the support console, metrics) that want what happens from now on and read the
past from a store: nothing is kept for them while they are away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractQueue

from exchange.exceptions import BrokerUnavailable
from exchange.transport.addresses import broker_addresses, connect_any


class FeedSubscription:
    """Messages published to one fanout exchange after ``open`` returned."""

    def __init__(self, url: str, exchange: str) -> None:
        self.url = url
        self.exchange = exchange
        self._connection: AbstractConnection | None = None
        self._queue: AbstractQueue | None = None

    async def open(self) -> None:
        """Connect, and bind a queue of our own to the exchange.

        Raises:
            BrokerUnavailable (broker-unavailable): the broker or the exchange is not there.
        """
        try:
            # A robust connection reconnects to the address it first reached.
            addresses = broker_addresses(self.url)
            self._connection = await connect_any(addresses, aio_pika.connect_robust)
            channel = await self._connection.channel()
            exchange = await channel.get_exchange(self.exchange)  # declared by the topology
            self._queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await self._queue.bind(exchange)
        except (aio_pika.exceptions.AMQPError, OSError) as exc:
            await self.close()
            raise BrokerUnavailable(
                f"cannot follow {self.exchange}: {exc!r}; is the broker up and the topology "
                "applied (start a node or the collector once)?"
            ) from None

    async def close(self) -> None:
        """Disconnect; the queue goes with the connection."""
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._queue = None

    async def bodies(self) -> AsyncIterator[bytes]:
        """Each message's body, in the order the broker delivers them, until closed."""
        assert self._queue is not None, "open() first"
        async with self._queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                yield message.body
