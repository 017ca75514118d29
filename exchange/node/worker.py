"""The handler driver: runs providers' handlers on stored requests, retries, dead-letters.

Once a request is in the store, the store owns it (DESIGN.md, Two stages): this loop finds
due requests, runs the service's handler, commits the answer effectively once, and retries
failures with back-off until the limit, after which the request is dead and the sender gets
``processing-failed``. A handler that waits (``Waiting``, or the broker is unavailable) did
not fail (DESIGN.md, Waiting is not failing): its request is parked until what it waits on
comes, its retry budget untouched; past the service's deadline the requester is told
``overdue`` once and the request stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from exchange.attachments.store import AttachmentFile
from exchange.envelope.model import Envelope, Kind
from exchange.exceptions import (
    BrokerUnavailable,
    ExchangeError,
    LeaseLost,
    PublishNotConfirmed,
    StateConflict,
    UnknownService,
    WaitedOnUnknown,
)
from exchange.ledger.event import EventName
from exchange.node.context import NodeContext, audit_event, record_event
from exchange.node.handlers import (
    BROKER,
    Handler,
    IncomingRequest,
    Later,
    Reject,
    Reply,
    Waiting,
)
from exchange.node.overdue import request_due_at
from exchange.node.parking import Parked, read_parked, write_parked
from exchange.node.store.base import InboxRecord, InboxState, Transaction
from exchange.signing.stored import decode_stored
from exchange.workdays.calendar import WorkCalendar, kazan_calendar

_FRESH_LIMIT = 10_000  # a backlog beyond this is read back from the store instead

# Both take the request's envelope too, so answering it needs no second decode.
Answer = Callable[[InboxRecord, dict[str, Any] | Reply, Envelope], Awaitable[object]]
Refuse = Callable[[InboxRecord, str, str, InboxState, Envelope], Awaitable[object]]
Settled = Callable[[str], Awaitable[bool]]  # has a request this node sent its final answer?
TellOverdue = Callable[[InboxRecord, Parked, datetime], Awaitable[object]]


class Worker:
    """Drives handlers for the services this node provides."""

    def __init__(
        self,
        context: NodeContext,
        handlers: dict[str, Handler],
        respond: Answer,
        reject: Refuse,
        settled: Settled,
        tell_overdue: TellOverdue,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.ctx = context
        self.handlers = handlers
        self._respond = respond
        self._reject = reject
        self._settled = settled
        self._tell_overdue = tell_overdue
        self.calendar = calendar or kazan_calendar()
        # Parked requests of this process by what they wait on; the store is the truth (a
        # parked request is looked at again every ``wait_recheck``), this only makes resuming
        # immediate when the answer or the broker comes back.
        self._parked: dict[str, set[str]] = {}
        self._connects = 0
        self._wake = asyncio.Event()
        self._running: set[str] = set()
        self._slots = asyncio.Semaphore(context.config.handler_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        # Requests just verified by the inbound: their first run needs no second decode.
        self._fresh: OrderedDict[str, Envelope] = OrderedDict()
        # Who holds this worker's claims: unique per process start, readable in the store.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lease = timedelta(seconds=context.config.claim_lease)
        self._renewed_at: datetime | None = None
        self._ordered: tuple[str, ...] | None = None

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
            except Exception:  # a bug must not end the loop silently: no request would run
                self.ctx.log().exception("worker.tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.ctx.config.poll_interval)

    async def settled(self, request_id: str) -> None:
        """A request this node sent got its final answer: resume what waited on it.

        A store error is only logged: the parked request's next recheck resumes it instead.
        """
        for waiting in self._parked.pop(request_id, set()):
            try:
                await self._due_now(waiting)
            except ExchangeError as exc:
                self.ctx.log().warning("resume.deferred", message_id=waiting, error=exc.message)

    async def tick(self) -> int:
        """Start handlers for every due request; return how many were started."""
        if not self.handlers:
            return 0
        if self.ctx.bus.connects != self._connects:  # (re)connected: the broker is back
            self._connects = self.ctx.bus.connects
            await self.settled(BROKER)
        now = self.ctx.clock.now()
        await self._renew(now)
        # Claim only what can start now: the rest stays for the party's other processes.
        free = self.ctx.config.handler_concurrency - len(self._running)
        if free <= 0:
            return 0
        started = 0
        claimed = await self.ctx.store.claim_inbox(
            self.owner, now, self._lease, free, self._ordered_services(), services=self.handlers
        )
        for record in claimed:
            if record.message_id in self._running or record.service not in self.handlers:
                # Not ours to run (its handler was removed meanwhile): let it go.
                await self.ctx.store.release_claim(self.owner, record.message_id)
                continue
            self._running.add(record.message_id)
            task = asyncio.create_task(self._run(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _renew(self, now: datetime) -> None:
        """Keep the leases of running handlers alive, a third of a lease before they end."""
        if not self._running:
            self._renewed_at = None
            return
        if self._renewed_at is None or now - self._renewed_at >= self._lease / 3:
            await self.ctx.store.renew_claims(self.owner, now + self._lease)
            self._renewed_at = now

    def _ordered_services(self) -> tuple[str, ...]:
        """Services of this node whose requests run in order per case (catalog ``ordered``)."""
        if self._ordered is None:
            ordered: list[str] = []
            for code in self.handlers:
                with contextlib.suppress(UnknownService):
                    if self.ctx.catalog.service(code).ordered:
                        ordered.append(code)
            self._ordered = tuple(ordered)
        return self._ordered

    async def drain(self) -> None:
        """Wait for the handlers already running."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(self, record: InboxRecord) -> None:
        try:
            async with self._slots:
                await self._attempt(record)
        except ExchangeError as exc:
            # Unfinished (the store failed): free the claim so that a next look runs it again.
            self.ctx.log().warning(
                "handler.unfinished", message_id=record.message_id, error=str(exc)
            )
            with contextlib.suppress(ExchangeError):
                await self.ctx.store.release_claim(self.owner, record.message_id)
        finally:
            self._running.discard(record.message_id)

    async def _attempt(self, record: InboxRecord) -> None:
        # A request never rescheduled was never parked: spare the fresh ones a store read.
        parked = (
            None
            if record.next_attempt_at is None
            else await read_parked(self.ctx.store, record.message_id)
        )
        if parked is not None and parked.active:
            if not await self._released(parked.on):
                await self._still_waiting(record, parked)
                return
            parked = await self._resume(record, parked)
            if parked is None:
                return
        envelope = self._fresh.pop(record.message_id, None) or decode_stored(record.wire)
        if record.attempts + record.takeovers > len(self.ctx.config.handler_retry_delays):
            # Runs that took their process down count against the budget too, or a request
            # that kills every process running it would be taken over forever.
            text = (
                f"the provider failed to process the request {record.attempts} times and its "
                f"process stopped while running it {record.takeovers} times"
            )
            await self._answer_safely(
                self._reject(record, "processing-failed", text, InboxState.DEAD, envelope)
            )
            return
        handler = self.handlers[record.service]
        # Every run counts: failed ones, waits, and runs of a process that died (takeovers).
        waits = parked.waits if parked is not None else 0
        attempt = record.attempts + waits + record.takeovers + 1
        try:
            typed = self.ctx.catalog.typed(envelope)  # the same payload shape for XML and JSON
            files = tuple(AttachmentFile(a, self.ctx.attachments) for a in typed.attachments)
            result = await handler(IncomingRequest(typed, attempt=attempt, attachments=files))
        except Reject as reject:
            await self._answer_safely(
                self._reject(record, reject.code, reject.text, InboxState.REJECTED, envelope)
            )
            return
        except Waiting as waiting:
            result = waiting
        except (BrokerUnavailable, PublishNotConfirmed):
            result = Waiting(BROKER)  # the broker is down, not the handler
        except Exception as exc:  # a handler's failure is retried, then dead-lettered
            self.ctx.log(envelope).warning("handler.failed", error=repr(exc), attempt=attempt)
            await self._failed(record, envelope, exc)
            return
        if isinstance(result, Waiting):
            await self._park(record, envelope, result.on, parked, attempt)
            return
        if isinstance(result, Later):
            try:
                async with self.ctx.store.transaction() as tx:
                    tx.set_inbox_state(
                        record.message_id, InboxState.WAITING, only_from=(InboxState.RECEIVED,)
                    )
                    self._hold(tx, record)
                    tx.audit(audit_event(EventName.HANDED_OVER, envelope, record.digest))
            except StateConflict:
                pass
            return
        await self._answer_safely(self._respond(record, result, envelope))

    # --- waiting --------------------------------------------------------------------------

    async def _released(self, on: str) -> bool:
        if on == BROKER:
            return self.ctx.bus.connected
        return await self._settled(on)

    async def _park(
        self,
        record: InboxRecord,
        envelope: Envelope,
        on: str,
        parked: Parked | None,
        attempt: int,
    ) -> None:
        if on != BROKER:
            sent = await self.ctx.store.get_outbox(on)
            if sent is None or sent.kind != Kind.REQUEST.value:
                # Fails closed: nothing would ever release it, so it counts as a failure.
                error = WaitedOnUnknown(
                    f"the handler waits on {on!r}, no request of this node", on=on
                )
                self.ctx.log(envelope).warning("handler.failed", error=str(error))
                await self._failed(record, envelope, error)
                return
        now = self.ctx.clock.now()
        parked = parked.again(on, now) if parked is not None else Parked(on, now, waits=1)
        try:
            async with self.ctx.store.transaction() as tx:
                self._put_off(tx, record, parked)
                self._hold(tx, record)
                write_parked(tx, record.message_id, parked)
                tx.audit(record_event(EventName.WAITING, record, on=on, attempt=attempt))
        except StateConflict:
            return  # cancelled or answered meanwhile
        self.ctx.log(envelope).info("handler.waiting", on=on, attempt=attempt)
        self._parked.setdefault(on, set()).add(record.message_id)
        # The answer may have come while the handler decided to wait. (A broker wait is not
        # released here: the handler just found the broker unusable; a reconnect or the
        # recheck releases it.)
        if on != BROKER and await self._released(on):
            await self.settled(on)

    async def _still_waiting(self, record: InboxRecord, parked: Parked) -> None:
        """Looked at again and still waiting: tell the requester once if overdue, park again."""
        due_at = request_due_at(self.ctx.catalog, self.calendar, record)
        if due_at is not None and not parked.overdue_told and self.ctx.clock.now() >= due_at:
            try:
                await self._tell_overdue(record, parked, due_at)
                parked = replace(parked, overdue_told=True)
            except StateConflict:
                return  # answered or cancelled meanwhile: nothing to park
            except ExchangeError as exc:  # told at the next look; the request stays parked
                self.ctx.log().warning(
                    "overdue.deferred", message_id=record.message_id, error=exc.message
                )
        with contextlib.suppress(StateConflict):
            async with self.ctx.store.transaction() as tx:
                self._put_off(tx, record, parked)
                self._hold(tx, record)
            self._parked.setdefault(parked.on, set()).add(record.message_id)

    async def _resume(self, record: InboxRecord, parked: Parked) -> Parked | None:
        resumed = replace(parked, active=False)
        try:
            async with self.ctx.store.transaction() as tx:
                tx.set_inbox_state(
                    record.message_id, InboxState.RECEIVED, only_from=(InboxState.RECEIVED,)
                )
                self._hold(tx, record, release=False)  # the handler runs next, still claimed
                write_parked(tx, record.message_id, resumed)
                tx.audit(record_event(EventName.RESUMED, record, on=parked.on))
        except StateConflict:
            return None
        return resumed

    async def _due_now(self, request_id: str) -> None:
        with contextlib.suppress(StateConflict):
            async with self.ctx.store.transaction() as tx:
                tx.set_inbox_state(
                    request_id,
                    InboxState.RECEIVED,
                    next_attempt_at=self.ctx.clock.now(),
                    only_from=(InboxState.RECEIVED,),
                )
        self._wake.set()

    def _put_off(self, tx: Transaction, record: InboxRecord, parked: Parked) -> None:
        """Keep the request open and parked until it is looked at again."""
        tx.set_inbox_state(
            record.message_id,
            InboxState.RECEIVED,
            next_attempt_at=self._look_again_at(record, parked),
            only_from=(InboxState.RECEIVED,),
        )

    def _look_again_at(self, record: InboxRecord, parked: Parked) -> datetime:
        """When a parked request is looked at again: the recheck, or its deadline if sooner."""
        now = self.ctx.clock.now()
        at = now + timedelta(seconds=self.ctx.config.wait_recheck)
        due_at = request_due_at(self.ctx.catalog, self.calendar, record)
        if due_at is not None and not parked.overdue_told:
            at = min(at, max(due_at, now))
        return at

    @staticmethod
    def _hold(tx: Transaction, record: InboxRecord, *, release: bool = True) -> None:
        """Commit only under this worker's live claim (a taken-over run changes nothing)."""
        if record.claim_owner is not None:
            tx.hold_claim(record.message_id, record.claim_owner, release=release)

    async def _answer_safely(self, answering: Awaitable[object]) -> None:
        try:
            await answering
        except LeaseLost as lost:  # a takeover runs it again: its outcome is the one kept
            self.ctx.log().warning("lease.lost", error=lost.message)
        except StateConflict:  # answered already, or a cancel came first
            pass

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
                self._hold(tx, record)
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
