"""Inbound: every delivery from the party's inbox, in the order of DESIGN.md's Decisions.

size -> parse -> signature and certificate -> recipient -> dedupe -> expiry -> access ->
payload schema -> attachments (the catalog's limits; held by the gate until all arrived
intact) -> inbox row, receipt and audit in one transaction -> publish receipt -> ack.
Only a sender whose signature verified ever gets a fault; the rest goes to quarantine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from exchange.attachments.gate import Gate
from exchange.envelope.model import Envelope, Fault, Kind
from exchange.exceptions import (
    DuplicateMessage,
    ExchangeError,
    Expired,
    PolicyError,
    StateConflict,
    WrongRecipient,
)
from exchange.ledger.event import EventName
from exchange.node.context import NodeContext, audit_event, record_event
from exchange.node.notices import Notice
from exchange.node.outbound import Outbound
from exchange.node.quarantine import quarantine
from exchange.node.store.base import (
    OPEN_INBOX,
    PRUNED,
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
    Transaction,
)
from exchange.node.verifying import Verifier
from exchange.signing import VerifiedEnvelope, WireFormat
from exchange.transport.delivery import Delivery

# What an answer to a request does to the request's outbox record.
_ADVANCES = {
    Kind.RECEIPT: (OutboxState.RECEIPTED, (OutboxState.PENDING, OutboxState.SENT)),
    # A status usually follows the receipt: RECEIPTED stays RECEIPTED, without a conflict
    # (which would roll back and replay the writer's whole group, then commit again).
    Kind.STATUS: (
        OutboxState.RECEIPTED,
        (OutboxState.PENDING, OutboxState.SENT, OutboxState.RECEIPTED),
    ),
    # Only an open request takes a final answer: after a response, a fault or undelivered,
    # another one is late (DESIGN.md: Final is final), checked by the store in the same
    # transaction that would close the request.
    Kind.RESPONSE: (
        OutboxState.ANSWERED,
        (OutboxState.PENDING, OutboxState.SENT, OutboxState.RECEIPTED),
    ),
}
_ADVANCES[Kind.FAULT] = _ADVANCES[Kind.RESPONSE]
# What comes late once the request has its final answer: another final answer, or a status
# (a system told "answered" must not hear "in progress" after it).
_LATE_AFTER_FINAL = frozenset({Kind.STATUS, Kind.RESPONSE, Kind.FAULT})
FIRST_HELD = "attachments.first-held."
"""Store meta key prefix: when a message was first held for its attachments (ISO time)."""
CANCELLED = "cancelled"
"""The fault code confirming a cancel: the cancelled request's final answer."""


class Inbound:
    """Takes deliveries off the inbox; acks only once the outcome is durable."""

    def __init__(
        self,
        context: NodeContext,
        outbound: Outbound,
        notify: Callable[[Notice], Awaitable[None]],
        request_stored: Callable[[Envelope], None],
        gate: Gate,
    ) -> None:
        self.ctx = context
        self.outbound = outbound
        self._notify = notify
        self._request_stored = request_stored
        self._answer_locks: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, tasks using it
        self.verifier = Verifier(
            context, context.config.verify_workers, context.config.verify_inline_bytes
        )
        self.gate = gate
        gate.accept = self.accept
        gate.refuse = self._refuse

    async def on_delivery(self, message: Delivery) -> None:
        """The AMQP consumer: handle, then ack; requeue if the outcome could not be stored."""
        try:
            await self.handle(message.body)
        except Exception as exc:  # store down, broker gone mid-way: let the broker redeliver
            self.ctx.log().error("inbound.requeued", error=str(exc), exc_type=type(exc).__name__)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def handle(self, raw: bytes) -> str:
        """Process one delivery; return what became of it (for logs and tests)."""
        try:
            # Off the loop (a worker thread): one costly input cannot stall the node.
            verified = await self.verifier.verify(raw)
        except ExchangeError as exc:  # unseal is total: whatever went wrong, quarantined
            await quarantine(self.ctx, raw, exc)
            return "quarantined"
        envelope = verified.envelope
        try:
            self.ctx.catalog.check_party(envelope.sender)
        except ExchangeError as exc:  # the collector's or console's key: no party to answer
            await quarantine(self.ctx, raw, exc)
            return "quarantined"
        if envelope.recipient != self.ctx.party:
            if envelope.kind is Kind.REQUEST:
                return await self._refuse(
                    verified, WrongRecipient(f"addressed to {envelope.recipient}, not to us")
                )
            return await self._ignore(verified, "addressed to another party")
        if envelope.kind is Kind.REQUEST:
            return await self._request(verified)
        if envelope.kind is Kind.CANCEL:
            return await self._cancel(verified)
        return await self._answer(verified)

    # --- requests -------------------------------------------------------------------------

    async def _request(self, verified: VerifiedEnvelope) -> str:
        envelope = verified.envelope
        # No look-up for duplicates here: the inbox insert refuses them (DuplicateMessage).
        if envelope.expires_at <= self.ctx.clock.now():
            return await self._refuse(
                verified, Expired(f"expired at {envelope.expires_at.isoformat()}")
            )
        try:
            self.ctx.catalog.check_request(envelope)
            self.ctx.catalog.check_payload(
                envelope,
                xml=verified.format is WireFormat.XML,
                document=verified.payload_document,  # the signed payload, not a re-encoding
            )
            self.ctx.catalog.check_attachments(envelope)
            missing = self.gate.missing(envelope)
        except PolicyError as exc:
            return await self._refuse(verified, exc)
        if missing:
            if await self.ctx.store.get_inbox(envelope.message_id) is not None:
                return await self._duplicate(verified)  # decided before: answer it again
            return self.gate.hold(
                verified, missing, since=await self._first_held(envelope.message_id)
            )
        return await self.accept(verified)

    async def _first_held(self, message_id: str) -> datetime:
        """When any process of the party first held ``message_id`` for its attachments:
        kept in the store, so a restart does not restart its ``attachment-missing`` bound."""
        since = self.gate.first_seen(message_id)
        if since is not None:
            return since
        key = FIRST_HELD + message_id
        now = self.ctx.clock.now()
        with contextlib.suppress(StateConflict):  # held before: the first time stands
            async with self.ctx.store.transaction() as tx:
                tx.put_meta(key, now.isoformat(), only_new=True)
        stored = await self.ctx.store.get_meta(key)
        return datetime.fromisoformat(stored) if stored else now

    async def accept(self, verified: VerifiedEnvelope) -> str:
        """Store a checked request (attachments complete), receipt it, hand it on."""
        envelope = verified.envelope
        self._note_attachments(envelope)
        receipt = self.outbound.seal(
            self.outbound.envelope(
                Kind.RECEIPT,
                service=envelope.service,
                recipient=envelope.sender,
                expires_at=self._answer_expiry(),
                answering=(envelope.message_id, verified.digest),
                case_id=envelope.case_id,
            ),
            verified.format,
        )
        try:
            async with self.ctx.store.transaction() as tx:
                tx.add_inbox(self._record(verified, InboxState.RECEIVED, receipt.wire))
                tx.add_outbox(receipt)
                tx.audit(
                    audit_event(
                        EventName.RECEIVED, envelope, verified.digest, sender=envelope.sender
                    )
                )
                tx.audit(record_event(EventName.RECEIPT_SENT, receipt, recipient=receipt.recipient))
        except DuplicateMessage:
            return await self._duplicate(verified)
        self.ctx.log(envelope).info("request.received", sender=envelope.sender)
        self._request_stored(envelope)
        await self.outbound.publish(receipt)
        return "received"

    async def _duplicate(self, verified: VerifiedEnvelope) -> str:
        envelope = verified.envelope
        await self._record_duplicate(verified)
        # Whatever we answered before (receipt, statuses, response or fault) goes out again.
        for record in await self.ctx.store.outbox_answering(envelope.message_id):
            if record.wire == PRUNED and record.kind == Kind.RECEIPT.value:
                record = await self._kept_receipt(record)
            await self.outbound.republish(record)
        self.ctx.log(envelope).info("request.duplicate")
        return "duplicate"

    async def _record_duplicate(self, verified: VerifiedEnvelope) -> str:
        # A message seen before (a resend, a broker redelivery, a replay) is a step too.
        envelope = verified.envelope
        async with self.ctx.store.transaction() as tx:
            tx.audit(
                audit_event(EventName.DUPLICATE, envelope, verified.digest, sender=envelope.sender)
            )
        return "duplicate"

    async def _kept_receipt(self, receipt: OutboxRecord) -> OutboxRecord:
        # Pruning empties the receipt's outbox copy, but the request's inbox row keeps one:
        # a sender that missed the receipt can always get it again (DESIGN.md: dedupe).
        request = await self.ctx.store.get_inbox(receipt.correlation_id or "")
        if request is None or not request.receipt_wire:
            return receipt
        return replace(receipt, wire=request.receipt_wire)

    async def _refuse(self, verified: VerifiedEnvelope, error: ExchangeError) -> str:
        envelope = verified.envelope
        fault = self._fault(
            envelope, (envelope.message_id, verified.digest), error.code, error.message[:4096]
        )

        def record_request(tx: Transaction) -> None:
            tx.add_inbox(self._record(verified, InboxState.REJECTED))
            tx.audit(
                audit_event(
                    EventName.REJECTED,
                    envelope,
                    verified.digest,
                    code=error.code,
                    reason=error.message,
                )
            )

        try:
            await self.outbound.send(
                fault, verified.format, EventName.FAULT_SENT, also=record_request
            )
        except DuplicateMessage:
            return await self._duplicate(verified)
        self.ctx.log(envelope).info("request.rejected", code=error.code, reason=error.message)
        return f"rejected:{error.code}"

    # --- cancels and answers to our own requests ------------------------------------------

    async def _cancel(self, verified: VerifiedEnvelope) -> str:
        """Close an open request and confirm with a signed ``cancelled`` fault, its final answer.

        A request already closed keeps its answer (it is final); the cancel is only noted.
        """
        envelope = verified.envelope
        request = await self.ctx.store.get_inbox(envelope.correlation_id or "")
        if (
            request is None
            or request.sender != envelope.sender
            or request.digest != envelope.request_digest
        ):
            return await self._ignore(verified, "cancel of a request we did not receive from it")
        confirmation = self._fault(
            envelope,
            (request.message_id, request.digest),
            CANCELLED,
            "cancelled at the sender's request",
        )

        def close_request(tx: Transaction) -> None:
            tx.add_inbox(self._record(verified, InboxState.NOTED))
            tx.set_inbox_state(request.message_id, InboxState.CANCELLED, only_from=OPEN_INBOX)
            tx.audit(audit_event(EventName.CANCELLED, envelope, verified.digest))

        try:
            await self.outbound.send(
                confirmation, verified.format, EventName.FAULT_SENT, also=close_request
            )
        except DuplicateMessage:
            return await self._record_duplicate(verified)
        except StateConflict:
            return await self._ignore(verified, "cancel after the request's final answer")
        return "cancelled"

    async def _answer(self, verified: VerifiedEnvelope, attachments_checked: bool = False) -> str:
        # Answers to one request are handled one at a time, in the order they were delivered
        # (deliveries run side by side): a status must not overtake its response.
        key = verified.envelope.correlation_id or ""
        lock, users = self._answer_locks.get(key, (asyncio.Lock(), 0))
        self._answer_locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._answer_in_order(verified, attachments_checked)
        finally:
            lock, users = self._answer_locks[key]
            if users == 1:
                del self._answer_locks[key]
            else:
                self._answer_locks[key] = (lock, users - 1)

    async def _answer_in_order(
        self, verified: VerifiedEnvelope, attachments_checked: bool = False
    ) -> str:
        envelope = verified.envelope
        request = await self.outbound.sent_request(envelope.correlation_id or "")
        if request is None or request != (envelope.sender, envelope.request_digest):
            return await self._ignore(verified, "answer not bound to a request of ours")
        if envelope.attachments and not attachments_checked:
            try:
                missing = self.gate.missing(envelope)
            except PolicyError as exc:
                return await self._answer_incomplete(verified, exc)
            if missing:  # noted once they arrived (or once they are given up on)
                return self.gate.hold(
                    verified,
                    missing,
                    since=await self._first_held(envelope.message_id),
                    accept=self._answer_complete,
                    refuse=self._answer_incomplete,
                )
        advance = _ADVANCES.get(envelope.kind)
        event = EventName.received(envelope.kind.value)
        self._note_attachments(envelope)
        try:
            try:
                await self._note(verified, event, advance)
            except StateConflict:
                if envelope.kind in _LATE_AFTER_FINAL:
                    return await self._late(verified)
                await self._note(verified, event, None)
        except DuplicateMessage:
            return await self._record_duplicate(verified)
        self.ctx.log(envelope).info("answer.received", kind=envelope.kind.value)
        typed = self.ctx.catalog.typed(envelope)  # the same payload shape for XML and JSON
        await self._notify(Notice(envelope.kind.value, envelope.correlation_id or "", typed))
        return envelope.kind.value

    async def _answer_complete(self, verified: VerifiedEnvelope) -> str:
        return await self._answer(verified, attachments_checked=True)

    async def _answer_incomplete(self, verified: VerifiedEnvelope, error: ExchangeError) -> str:
        # An answer is signed and final; it is never refused, so it is noted all the same,
        # its attachment's failure on record (opening that attachment says it is missing).
        async with self.ctx.store.transaction() as tx:
            tx.audit(
                audit_event(
                    EventName.IGNORED,
                    verified.envelope,
                    verified.digest,
                    reason=f"attachments: {error.message}",
                    code=error.code,
                )
            )
        self.ctx.log(verified.envelope).warning(
            "answer.attachments_failed", code=error.code, reason=error.message
        )
        return await self._answer(verified, attachments_checked=True)

    async def _late(self, verified: VerifiedEnvelope) -> str:
        # The request had its final answer: this status, response or fault is kept and
        # recorded as late, and the departmental system is not told (it must never hear of
        # the request again after its one final answer).
        # Raises DuplicateMessage if it was seen before.
        await self._note(verified, EventName.LATE_ANSWER, None, InboxState.LATE)
        self.ctx.log(verified.envelope).warning(
            "answer.late", kind=verified.envelope.kind.value, digest=verified.digest
        )
        return "late"

    async def _note(
        self,
        verified: VerifiedEnvelope,
        event: EventName,
        advance: tuple[OutboxState, tuple[OutboxState, ...]] | None,
        state: InboxState = InboxState.NOTED,
    ) -> None:
        envelope = verified.envelope
        async with self.ctx.store.transaction() as tx:
            tx.add_inbox(self._record(verified, state))
            if advance is not None:
                tx.set_outbox_state(envelope.correlation_id or "", advance[0], only_from=advance[1])
            detail = {"fault": envelope.fault.code} if envelope.fault else {}
            tx.audit(audit_event(event, envelope, verified.digest, **detail))

    # --- what is not processed ------------------------------------------------------------

    async def _ignore(self, verified: VerifiedEnvelope, reason: str) -> str:
        # Never a fault in reply to a non-request: two nodes must not ping-pong faults.
        async with self.ctx.store.transaction() as tx:
            tx.audit(
                audit_event(EventName.IGNORED, verified.envelope, verified.digest, reason=reason)
            )
        self.ctx.log(verified.envelope).warning("inbound.ignored", reason=reason)
        return "ignored"

    def _note_attachments(self, envelope: Envelope) -> None:
        # Before the message is stored: retention then never sees it without its reference.
        for attachment in envelope.attachments:
            self.ctx.attachments.add_ref(attachment.sha256, envelope.message_id)

    def _record(
        self, verified: VerifiedEnvelope, state: InboxState, receipt_wire: bytes | None = None
    ) -> InboxRecord:
        envelope = verified.envelope
        return InboxRecord(
            message_id=envelope.message_id,
            kind=envelope.kind.value,
            sender=envelope.sender,
            service=envelope.service.code,
            correlation_id=envelope.correlation_id,
            case_id=envelope.case_id,
            wire=verified.raw,
            digest=verified.digest,
            received_at=self.ctx.clock.now(),
            expires_at=envelope.expires_at,
            state=state,
            receipt_wire=receipt_wire,
        )

    def _fault(
        self, envelope: Envelope, answering: tuple[str, str], code: str, text: str
    ) -> Envelope:
        """A fault to the sender of ``envelope`` answering (request id, request digest)."""
        return self.outbound.envelope(
            Kind.FAULT,
            service=envelope.service,
            recipient=envelope.sender,
            expires_at=self._answer_expiry(),
            answering=answering,
            case_id=envelope.case_id,
            fault=Fault(code=code, text=text),
        )

    def _answer_expiry(self) -> datetime:
        return self.ctx.clock.now() + self.ctx.config.request_ttl
