"""One message a Bus subscriber takes off its queue, to be acked once its outcome is durable."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiormq.abc import AbstractChannel, DeliveredMessage


class Delivery:
    """A delivered message: its body, and one of ack, nack or reject (manual acks).

    A thin wrapper of aiormq's delivered message. aio-pika's IncomingMessage, and the second
    task its consumer starts for every message, cost a third of the client's CPU per delivery.
    Settling twice is a bug in the subscriber, as in aio-pika: it raises.
    """

    __slots__ = ("_channel", "_settled", "_tag", "body")

    def __init__(self, message: DeliveredMessage) -> None:
        self.body: bytes = message.body
        self._channel: AbstractChannel = message.channel
        self._tag = message.delivery_tag or 0
        self._settled = False

    async def ack(self) -> None:
        """Done with it: the broker forgets the message."""
        self._settle()
        await self._channel.basic_ack(self._tag)

    async def nack(self, requeue: bool = True) -> None:
        """Not done: the broker delivers it again (or dead-letters it past its limit)."""
        self._settle()
        await self._channel.basic_nack(self._tag, requeue=requeue)

    async def reject(self, requeue: bool = False) -> None:
        """Refused for good (unless ``requeue``): the broker dead-letters or drops it."""
        self._settle()
        await self._channel.basic_reject(self._tag, requeue=requeue)

    def _settle(self) -> None:
        if self._settled:
            raise RuntimeError("this delivery was already acked, nacked or rejected")
        self._settled = True
