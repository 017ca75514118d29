"""The handler driver: runs providers' handlers on stored requests, retries, dead-letters.

Once a request is in the store, the store owns it (DESIGN.md, Two stages): this loop finds
due requests, runs the service's handler, commits the answer effectively once, and retries
failures with back-off until the limit, after which the request is dead and the sender gets
``processing-failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from exchange.envelope.model import Envelope
from exchange.exceptions import ExchangeError, StateConflict
from exchange.ledger.event import EventName
from exchange.node.context import NodeContext, audit_event, record_event
from exchange.node.handlers import Handler, IncomingRequest, Later, Reject
from exchange.node.store.base import InboxRecord, InboxState
from exchange.signing.stored import decode_stored

_FRESH_LIMIT = 10_000  # a backlog beyond this is read back from the store instead

# Both take the request's envelope too, so answering it needs no second decode.
Answer = Callable[[InboxRecord, dict[str, Any], Envelope], Awaitable[object]]
Refuse = Callable[[InboxRecord, str, str, InboxState, Envelope], Awaitable[object]]


class Worker:
    """Drives handlers for the services this node provides."""

    def __init__(
        self,
        context: NodeContext,
        handlers: dict[str, Handler],
        respond: Answer,
        reject: Refuse,
    ) -> None:
        self.ctx = context
        self.handlers = handlers
        self._respond = respond
        self._reject = reject
        self._wake = asyncio.Event()
        self._running: set[str] = set()
        self._slots = asyncio.Semaphore(context.config.handler_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        # Requests just verified by the inbound: their first run needs no second decode.
        self._fresh: OrderedDict[str, Envelope] = OrderedDict()

    def wake(self) -> None:
        """Look at the store now rather than at the next poll."""
        self._wake.set()

    def received(self, envelope: Envelope) -> None:
        """A request was stored just now: keep its verified envelope and look at once."""
        if envelope.service.code not in self.handlers:
            return  # the departmental system answers it; no handler will run here
        self._fresh[envelope.message_id] = envelope
        if len(self._fresh) > _FRESH_LIMIT:
            self._fresh.popitem(last=False)
        self._wake.set()

    async def run(self) -> None:
        """Loop until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except ExchangeError as exc:
                self.ctx.log().error("worker.store_error", error=exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.ctx.config.poll_interval)

    async def tick(self) -> int:
        """Start handlers for every due request; return how many were started."""
        if not self.handlers:
            return 0
        started = 0
        for record in await self.ctx.store.due_inbox(self.ctx.clock.now()):
            if record.message_id in self._running or record.service not in self.handlers:
                continue
            self._running.add(record.message_id)
            task = asyncio.create_task(self._run(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def drain(self) -> None:
        """Wait for the handlers already running."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(self, record: InboxRecord) -> None:
        try:
            async with self._slots:
                await self._attempt(record)
        finally:
            self._running.discard(record.message_id)

    async def _attempt(self, record: InboxRecord) -> None:
        envelope = self._fresh.pop(record.message_id, None) or decode_stored(record.wire)
        handler = self.handlers[record.service]
        try:
            typed = self.ctx.catalog.typed(envelope)  # the same payload shape for XML and JSON
            result = await handler(IncomingRequest(typed, attempt=record.attempts + 1))
        except Reject as reject:
            await self._answer_safely(
                self._reject(record, reject.code, reject.text, InboxState.REJECTED, envelope)
            )
            return
        except Exception as exc:  # a handler's failure is retried, then dead-lettered
            self.ctx.log(envelope).warning(
                "handler.failed", error=repr(exc), attempt=record.attempts + 1
            )
            await self._failed(record, envelope, exc)
            return
        if isinstance(result, Later):
            try:
                async with self.ctx.store.transaction() as tx:
                    tx.set_inbox_state(
                        record.message_id, InboxState.WAITING, only_from=(InboxState.RECEIVED,)
                    )
                    tx.audit(audit_event(EventName.HANDED_OVER, envelope, record.digest))
            except StateConflict:
                pass
            return
        await self._answer_safely(self._respond(record, result, envelope))

    async def _answer_safely(self, answering: Awaitable[object]) -> None:
        with contextlib.suppress(StateConflict):  # answered already, or a cancel came first
            await answering

    async def _failed(self, record: InboxRecord, envelope: Envelope, error: Exception) -> None:
        attempts = record.attempts + 1
        delays = self.ctx.config.handler_retry_delays
        if attempts > len(delays):
            text = f"the provider failed to process the request {attempts} times"
            await self._answer_safely(
                self._reject(
                    replace(record, attempts=attempts),
                    "processing-failed",
                    text,
                    InboxState.DEAD,
                    envelope,
                )
            )
            return
        retry_at = self.ctx.clock.now() + timedelta(seconds=delays[attempts - 1])
        try:
            async with self.ctx.store.transaction() as tx:
                tx.set_inbox_state(
                    record.message_id,
                    InboxState.RECEIVED,
                    attempts=attempts,
                    next_attempt_at=retry_at,
                    only_from=(InboxState.RECEIVED,),
                )
                tx.audit(
                    record_event(
                        EventName.RETRIED,
                        record,
                        attempt=attempts,
                        retry_at=retry_at.isoformat(),
                        error=repr(error)[:500],
                    )
                )
        except StateConflict:
            pass
