"""What node and audit need of a message bus: the seam that keeps aio-pika inside transport.

``Bus`` (RabbitMQ) is the one implementation; the protocol is what a test double or another
broker would implement. It is shaped for what comes next: ``Delivery`` carries its own ack
(multiple-acks batch inside), and ``addresses`` may name several nodes of a broker cluster.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from exchange.transport.delivery import Delivery
from exchange.transport.names import BusNames

Callback = Callable[[Delivery], Awaitable[None]]


class Transport(Protocol):
    """A supervised connection: confirmed publishing, consumers kept across reconnects."""

    addresses: tuple[str, ...]
    connects: int

    @property
    def url(self) -> str:
        """The address connected to (or to be tried next)."""
        ...

    @property
    def connected(self) -> bool:
        """True while connected and able to publish."""
        ...

    async def start(self, timeout: float = 15.0) -> None:
        """Connect, keep reconnecting in the background; raise BrokerUnavailable on timeout."""
        ...

    async def stop(self) -> None:
        """Close and stop reconnecting."""
        ...

    def declare_on_connect(self, names: BusNames, parties: Iterable[str]) -> None:
        """Declare the bus topology for ``parties`` on every (re)connect, before consuming."""
        ...

    def subscribe(self, queue: str, callback: Callback, *, prefetch: int | None = None) -> None:
        """Consume ``queue`` with manual acks, now and after every reconnect (``prefetch``:
        a channel of its own with at most that many unacked deliveries)."""
        ...

    async def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue`` now; raise BrokerUnavailable when it cannot tell."""
        ...

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        content_type: str,
        message_type: str = "",
        user_id: str | None = None,
    ) -> None:
        """Publish persistent and mandatory; return once the broker confirmed it."""
        ...
