"""One message a Bus subscriber takes off its queue, to be acked once its outcome is durable."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from aiormq.abc import AbstractChannel, DeliveredMessage


class Delivery:
    """A delivered message: its body, and one of ack, nack or reject (manual acks).

    A thin wrapper of aiormq's delivered message. aio-pika's IncomingMessage, and the second
    task its consumer starts for every message, cost a third of the client's CPU per delivery.
    Settling twice is a bug in the subscriber, as in aio-pika: it raises.
    """

    __slots__ = ("_acks", "_settled", "_tag", "body", "user_id")

    def __init__(self, message: DeliveredMessage, acks: Acks) -> None:
        self.body: bytes = message.body
        # Set by the publisher and validated by the broker against its login (if set at all).
        self.user_id: str | None = message.header.properties.user_id
        self._acks = acks
        self._tag = message.delivery_tag or 0
        self._settled = False

    async def ack(self) -> None:
        """Done with it: the broker forgets the message (once the ack is written)."""
        self._settle()
        await self._acks.ack(self._tag)

    async def nack(self, requeue: bool = True) -> None:
        """Not done: the broker delivers it again (or dead-letters it past its limit)."""
        self._settle()
        channel = self._acks.channel
        await self._acks.exact(self._tag, channel.basic_nack(self._tag, requeue=requeue))

    async def reject(self, requeue: bool = False) -> None:
        """Refused for good (unless ``requeue``): the broker dead-letters or drops it."""
        self._settle()
        channel = self._acks.channel
        await self._acks.exact(self._tag, channel.basic_reject(self._tag, requeue=requeue))

    def _settle(self) -> None:
        if self._settled:
            raise RuntimeError("this delivery was already acked, nacked or rejected")
        self._settled = True


class Acks:
    """The settlements of one consume channel: acks due in one loop turn go out together.

    An ack frame costs the client as much CPU as a small publish. Acks that become due in
    the same event-loop turn (deliveries whose stores group-committed together, receipts
    confirmed together) are written as one ``basic.ack(multiple=True)`` for the highest
    tag, but only over a run of consecutive tags above everything settled so far, each of
    them due or already settled on the wire: a multiple ack never covers a delivery whose
    own ack was not asked for (still working, or never handed to us). Due tags outside
    such a run are acked one by one. Nacks and rejects are always sent alone, at once.
    One batch is on the wire at a time, so ack frames keep their order (an ack overtaken by
    a multiple ack covering it would be an unknown tag, and the broker closes the channel).
    """

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self._floor = 0  # every tag up to here is settled on the wire (tags start at 1)
        self._settled: set[int] = set()  # tags above the floor whose frame was written
        self._due: set[int] = set()  # tags whose ack was asked for, not yet planned
        self._batch: asyncio.Future[None] | None = None  # what the due tags will wait for
        self._writer: asyncio.Task[None] | None = None

    async def ack(self, tag: int) -> None:
        """Ack ``tag`` together with the acks due in this turn; return once it is written."""
        self._due.add(tag)
        loop = asyncio.get_running_loop()
        if self._batch is None:
            self._batch = loop.create_future()
        batch = self._batch
        # The writing is a task of its own: a subscriber's task must not stay busy writing
        # other deliveries' acks under steady load, nor take the batch down if cancelled.
        if self._writer is None:
            self._writer = loop.create_task(self._write_due())
        await asyncio.shield(batch)  # a cancelled waiter must not cancel the shared batch

    async def exact(self, tag: int, frame: Awaitable[None]) -> None:
        """Send a nack or reject of ``tag`` alone; only once written may a run cover ``tag``."""
        await frame
        self._settled.add(tag)

    async def _write_due(self) -> None:
        batch: asyncio.Future[None] | None = None
        try:
            while self._due:
                await asyncio.sleep(0)  # let the acks that become due in this turn join
                batch, self._batch = self._batch, None
                assert batch is not None
                try:
                    await self._write(*self._plan())
                except Exception as exc:  # the channel broke: every ack of the batch failed
                    batch.set_exception(exc)
                    # Marked as seen: its waiters may all have been cancelled (the bus is
                    # stopping); those still waiting get it all the same.
                    batch.exception()
                else:
                    batch.set_result(None)
        finally:
            self._writer = None
            for left in (batch, self._batch):  # cancelled mid-way (the bus is stopping)
                if left is not None and not left.done():
                    left.cancel()
            self._batch = None

    def _plan(self) -> tuple[int, int, list[int]]:
        """Take the due tags: the top of the run above the floor, its size, the rest."""
        due = sorted(self._due)
        self._due.clear()
        floor, top, run, i = self._floor, 0, 0, 0
        while True:
            following = floor + 1
            if i < len(due) and due[i] == following:
                top, run, i = following, run + 1, i + 1
            elif following in self._settled:
                self._settled.discard(following)
            else:
                break
            floor = following
        self._floor = floor
        return top, run, due[i:]

    async def _write(self, top: int, run: int, singles: list[int]) -> None:
        if run:
            await self.channel.basic_ack(top, multiple=run > 1)
        for tag in singles:
            await self.channel.basic_ack(tag)
            self._settled.add(tag)
