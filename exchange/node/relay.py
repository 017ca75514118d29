"""The relay: publishes what the broker never confirmed and resends requests without receipt.

After a crash or a broker outage the outbox still holds every message; this loop finds the
due ones. A request is resent as the same bytes (same message_id) until it has a receipt or
expires; then it is ``undelivered``, finally, and the departmental system is told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from exchange.exceptions import ExchangeError, Unroutable
from exchange.node.context import NodeContext
from exchange.node.outbound import Outbound
from exchange.node.store.base import OutboxRecord, OutboxState

_BATCH = 500
_WINDOW = 64


class Relay:
    """Keeps the outbox moving."""

    def __init__(
        self,
        context: NodeContext,
        outbound: Outbound,
        republished: Callable[[OutboxRecord], None] | None = None,
    ) -> None:
        """``republished`` is told of every request the relay published (its attachments
        go again with it)."""
        self.ctx = context
        self.outbound = outbound
        self._republished = republished

    async def run(self) -> None:
        """Loop until cancelled."""
        while True:
            try:
                await self.tick()
            except ExchangeError as exc:
                self.ctx.log().error("relay.error", error=exc.message)
            await asyncio.sleep(self.ctx.config.poll_interval)

    async def tick(self) -> int:
        """Handle every due outbox record once; return how many were published."""
        if not self.ctx.bus.connected:
            return 0
        now = self.ctx.clock.now()
        due = [
            record
            for record in await self.ctx.store.due_outbox(now, limit=_BATCH)
            if not self.outbound.confirm_pending(record.message_id)
        ]
        window = asyncio.Semaphore(_WINDOW)

        async def one(record: OutboxRecord) -> bool:
            if record.kind == "request" and now >= record.expires_at:
                reason = (
                    "no receipt before it expired"
                    if record.state is OutboxState.SENT
                    else "never reached the broker before it expired"
                )
                await self.outbound.give_up(record, reason)
                return False
            async with window:
                try:
                    published = await self.outbound.publish(record, resend=record.attempts > 0)
                except Unroutable:
                    return False  # recorded as undelivered by publish()
                if published and record.kind == "request" and self._republished is not None:
                    self._republished(record)
                return published

        # Confirms are awaited side by side, not one after another.
        return sum(await asyncio.gather(*(one(record) for record in due)))
