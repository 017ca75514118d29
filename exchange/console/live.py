"""Live updates: the collector's feed fanned out to the case pages that are open.

One task follows ``CentralFeed`` (records the collector stored, re-verified); each open case
page's SSE stream subscribes by case id and gets that case's new records. A page that
falls behind loses its oldest queued records, never blocks the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import structlog

from exchange.ledger.event import AuditRecord

log = structlog.get_logger("exchange.console")
_QUEUE = 256


class RecordFeed(Protocol):
    """What the hub follows (``exchange.audit.feed.CentralFeed``)."""

    async def open(self) -> None:
        """Start following."""

    async def close(self) -> None:
        """Stop following."""

    def records(self) -> AsyncIterator[AuditRecord]:
        """New records until closed."""


class LiveHub:
    """Fans records out to subscribers by case id."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[AuditRecord | None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._feed: RecordFeed | None = None

    @property
    def running(self) -> bool:
        """Whether a feed is being followed."""
        return self._task is not None and not self._task.done()

    async def start(self, feed: RecordFeed) -> None:
        """Open ``feed`` and follow it in the background.

        Raises:
            BrokerUnavailable (broker-unavailable): the feed cannot be opened.
        """
        await feed.open()
        self._feed = feed
        self._task = asyncio.create_task(self._follow(feed), name="console-live")

    async def stop(self) -> None:
        """Stop following."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.close()

    async def _follow(self, feed: RecordFeed) -> None:
        async for record in feed.records():
            self.publish(record)

    def publish(self, record: AuditRecord) -> None:
        """Hand ``record`` to the subscribers of its case."""
        case_id = record.event.case_id
        for queue in self._subscribers.get(case_id or "", ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(record)

    def end_streams(self) -> None:
        """Tell every subscriber to stop (``None``): open pages must not hold a shutdown."""
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)

    @contextlib.contextmanager
    def subscribe(self, case_id: str) -> Iterator[asyncio.Queue[AuditRecord | None]]:
        """A queue of ``case_id``'s new records while the ``with`` block runs; ``None`` in it
        means the console is shutting down."""
        queue: asyncio.Queue[AuditRecord | None] = asyncio.Queue(_QUEUE)
        self._subscribers.setdefault(case_id, set()).add(queue)
        try:
            yield queue
        finally:
            subscribers = self._subscribers.get(case_id, set())
            subscribers.discard(queue)
            if not subscribers:
                self._subscribers.pop(case_id, None)
