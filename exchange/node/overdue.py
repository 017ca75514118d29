"""Open requests no handler of this node looks at again, past their regulated deadline.

DESIGN.md, Waiting is not failing: past the deadline the request stays open and its
requester gets one status ``overdue``. The worker does this for requests its handlers park
(``Waiting``); this watch does it for the rest — requests a handler handed over to the
departmental system (``Later``), and requests of services this node runs no handler for
(a bridge's departmental system answers them). Told once per request, noted in the store's
meta table in the same transaction as the status, so every process of the party knows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING

from exchange.exceptions import ExchangeError, StateConflict, UnknownService
from exchange.node.context import NodeContext
from exchange.node.store.base import InboxRecord, InboxState, Transaction
from exchange.workdays.calendar import WorkCalendar

if TYPE_CHECKING:
    from exchange.catalog import Catalog


def request_due_at(
    catalog: Catalog, calendar: WorkCalendar, record: InboxRecord
) -> datetime | None:
    """When a received request falls due under its service's deadline (None: no deadline)."""
    try:
        deadline = catalog.service(record.service).deadline
    except UnknownService:
        return None
    return None if deadline is None else calendar.due_at(record.received_at, deadline)


HANDED_OVER = "departmental-system"
"""What an overdue request waits on when no handler of this node will run for it again."""

_PREFIX = "overdue."
_PAGE = 10_000

Tell = Callable[[InboxRecord, datetime, str, Callable[[Transaction], None]], Awaitable[object]]
"""``tell(record, due_at, waiting_on, note)``: send the status; ``note`` runs in its transaction."""


class OverdueWatch:
    """Tells requesters of handed-over or bridge-answered requests once that they are late."""

    def __init__(
        self,
        context: NodeContext,
        calendar: WorkCalendar,
        handled: Collection[str],
        tell: Tell,
    ) -> None:
        self.ctx = context
        self.calendar = calendar
        self._handled = handled  # services with a handler here: the worker watches those
        self._tell = tell

    async def run(self) -> None:
        """Sweep every ``wait_recheck`` seconds until cancelled."""
        while True:
            try:
                await self.sweep()
            except ExchangeError as exc:  # the store is away: the next sweep tries again
                self.ctx.log().warning("overdue.sweep_failed", error=exc.message)
            await asyncio.sleep(self.ctx.config.wait_recheck)

    async def sweep(self) -> int:
        """Tell every requester whose request became overdue; return how many were told."""
        now = self.ctx.clock.now()
        told = 0
        candidates = [
            *await self.ctx.store.inbox_by_state(InboxState.WAITING, _PAGE),
            *[
                record
                for record in await self.ctx.store.inbox_by_state(InboxState.RECEIVED, _PAGE)
                if record.service not in self._handled
            ],
        ]
        for record in candidates:
            due_at = self.due_at(record)
            if due_at is None or now < due_at:
                continue
            key = _PREFIX + record.message_id
            if await self.ctx.store.get_meta(key):
                continue

            def note(tx: Transaction, key: str = key) -> None:
                tx.put_meta(key, "told")

            try:
                await self._tell(record, due_at, HANDED_OVER, note)
            except StateConflict:
                continue  # answered or cancelled meanwhile
            told += 1
        return told

    def due_at(self, record: InboxRecord) -> datetime | None:
        """When a received request falls due under its service's deadline (None: no deadline)."""
        return request_due_at(self.ctx.catalog, self.calendar, record)
