"""Outbound: sign, store with its audit event in one transaction, publish with confirms."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from exchange._ids import new_message_id
from exchange.envelope.model import Attachment, Envelope, Fault, Kind, ServiceRef
from exchange.exceptions import (
    BrokerUnavailable,
    ExchangeError,
    PublishNotConfirmed,
    StateConflict,
    Unroutable,
)
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.context import NodeContext, audit_event, record_event
from exchange.node.store.base import PRUNED, OutboxRecord, OutboxState, Transaction
from exchange.signing import WireFormat, digest, seal, sniff_format

# Requests recently sent, to bind their answers without a store read (a miss reads the store).
# Small: at 100,000 entries it alone grew a sender's RSS by a third over a long run.
_SENT_CACHE = 10_000
CONTENT_TYPES = {WireFormat.XML: "application/xml", WireFormat.JSON: "application/json"}

Extra = Callable[[Transaction], None]


class Outbound:
    """Everything a node sends goes through here."""

    def __init__(
        self, context: NodeContext, on_undelivered: Callable[[OutboxRecord], Awaitable[None]]
    ) -> None:
        self.ctx = context
        self._on_undelivered = on_undelivered
        # Requests this node sent: answers are checked against them on every receipt.
        self._sent: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._confirmed: list[tuple[OutboxRecord, bool]] = []
        self._in_flight: set[str] = set()  # confirmed by the broker, not yet in the store
        self._flushing: asyncio.Task[None] | None = None

    def envelope(
        self,
        kind: Kind,
        *,
        service: ServiceRef,
        recipient: str,
        expires_at: datetime,
        answering: tuple[str, str] | None = None,
        case_id: str | None = None,
        payload: dict[str, Any] | None = None,
        fault: Fault | None = None,
        test: bool = False,
        message_id: str | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> Envelope:
        """A new envelope from this party; ``answering`` is (request id, request digest).

        ``message_id`` is a fresh random id unless the caller derives one (idempotent senders).
        """
        return Envelope(
            message_id=message_id or new_message_id(),
            kind=kind,
            service=service,
            sender=self.ctx.party,
            recipient=recipient,
            created_at=self.ctx.clock.now(),
            expires_at=expires_at,
            correlation_id=answering[0] if answering else None,
            request_digest=answering[1] if answering else None,
            case_id=case_id,
            payload=payload,
            fault=fault,
            test=test,
            attachments=attachments,
        )

    def seal(self, envelope: Envelope, wire_format: WireFormat) -> OutboxRecord:
        """Sign an envelope and make its outbox record."""
        return self.record(envelope, seal(envelope, self.ctx.credentials, wire_format))

    def record(self, envelope: Envelope, wire: bytes) -> OutboxRecord:
        """The outbox record of ``envelope`` signed as ``wire``, due for a first publish."""
        now = self.ctx.clock.now()
        return OutboxRecord(
            message_id=envelope.message_id,
            kind=envelope.kind.value,
            recipient=envelope.recipient,
            service=envelope.service.code,
            correlation_id=envelope.correlation_id,
            case_id=envelope.case_id,
            wire=wire,
            digest=digest(wire),
            created_at=now,
            expires_at=envelope.expires_at,
            next_attempt_at=now + timedelta(seconds=self.ctx.config.publish_grace),
        )

    async def send(
        self,
        envelope: Envelope,
        wire_format: WireFormat,
        event: EventName,
        also: Extra | None = None,
        **detail: Any,
    ) -> OutboxRecord:
        """Sign, store (with ``also``'s changes, atomically) and publish one envelope.

        ``detail`` goes into the audit event. A broker outage does not fail the call: the
        message is durable and the relay publishes it later.

        Raises:
            Unroutable (unroutable): the broker has no queue for the recipient.
            DuplicateMessage, StateConflict: ``also`` conflicted; nothing was stored.
        """
        record = self.seal(envelope, wire_format)
        if envelope.kind is not Kind.REQUEST:  # a request's are noted by the node, earlier
            for attachment in envelope.attachments:
                self.ctx.attachments.add_ref(attachment.sha256, envelope.message_id)
        async with self.ctx.store.transaction() as tx:
            tx.add_outbox(record)
            tx.audit(
                audit_event(event, envelope, record.digest, recipient=envelope.recipient, **detail)
            )
            if also is not None:
                also(tx)
        if envelope.kind is Kind.REQUEST:
            self._remember(record)
        await self.publish(record)
        return record

    def _remember(self, record: OutboxRecord) -> None:
        self._sent[record.message_id] = (record.recipient, record.digest)
        if len(self._sent) > _SENT_CACHE:
            self._sent.popitem(last=False)

    async def sent_request(self, message_id: str) -> tuple[str, str] | None:
        """(recipient, digest) of a request this node sent, or None."""
        known = self._sent.get(message_id)
        if known is not None:
            return known
        record = await self.ctx.store.get_outbox(message_id)
        if record is None or record.kind != Kind.REQUEST.value:
            return None
        return (record.recipient, record.digest)

    async def publish(self, record: OutboxRecord, *, resend: bool = False) -> bool:
        """Publish a stored message and record the broker's confirm; False if deferred.

        Raises:
            Unroutable (unroutable): refused by the broker; the record is now UNDELIVERED.
        """
        try:
            await self._put_on_bus(record)
        except Unroutable as exc:
            await self._undeliverable(record, exc)
            raise
        except (BrokerUnavailable, PublishNotConfirmed) as exc:
            self.ctx.log(
                message_id=record.message_id,
                correlation_id=record.correlation_id,
                case_id=record.case_id,
            ).warning("publish.deferred", error=exc.message)
            return False
        self._confirmed.append((record, resend))
        self._in_flight.add(record.message_id)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_confirms())
        return True

    async def _flush_confirms(self) -> None:
        # Nothing waits on a confirm being written, so confirms are written in batches,
        # one commit for many. If the node dies first, the relay publishes those messages
        # again and their recipients drop the duplicates.
        while self._confirmed:
            batch, self._confirmed = self._confirmed, []
            try:
                try:
                    async with self.ctx.store.transaction() as tx:
                        for record, resend in batch:
                            self._write_confirm(tx, record, resend)
                except StateConflict:
                    # A receipt overtook some request's confirm: one transaction each, all
                    # queued at once, so the store still writes them in one group commit.
                    await asyncio.gather(*(self._confirm_one(r, resend) for r, resend in batch))
            except ExchangeError as exc:
                self.ctx.log().warning("confirm.deferred", error=exc.message, count=len(batch))
            finally:
                self._in_flight.difference_update(record.message_id for record, _ in batch)

    async def _confirm_one(self, record: OutboxRecord, resend: bool) -> None:
        try:
            async with self.ctx.store.transaction() as tx:
                self._write_confirm(tx, record, resend)
        except StateConflict:
            # The request moved on first (its receipt or answer overtook the confirm): its
            # state stays, but the broker's confirm is a step of its own and goes on record.
            async with self.ctx.store.transaction() as tx:
                tx.audit(self._confirm_event(record, resend, overtaken=True))

    def confirm_pending(self, message_id: str) -> bool:
        """True while the broker's confirm of ``message_id`` is not written yet."""
        return message_id in self._in_flight

    def _write_confirm(self, tx: Transaction, record: OutboxRecord, resend: bool) -> None:
        attempts = record.attempts + 1
        if record.kind == Kind.REQUEST.value:
            tx.set_outbox_state(
                record.message_id,
                OutboxState.SENT,
                attempts=attempts,
                next_attempt_at=self.ctx.clock.now() + self.ctx.config.receipt_timeout(attempts),
                only_from=(OutboxState.PENDING, OutboxState.SENT),
            )
        else:
            tx.set_outbox_state(record.message_id, OutboxState.DONE, attempts=attempts)
        tx.audit(self._confirm_event(record, resend))

    @staticmethod
    def _confirm_event(record: OutboxRecord, resend: bool, **detail: Any) -> AuditEvent:
        return _record_event(EventName.RESENT if resend else EventName.CONFIRMED, record, **detail)

    async def drain(self) -> None:
        """Write the confirms still waiting (at shutdown)."""
        if self._flushing is not None:
            await self._flushing

    async def republish(self, record: OutboxRecord) -> None:
        """Send a stored message again as it is (a sender asked again); no state change."""
        if record.wire == PRUNED:  # its content was pruned: nothing left to send
            self.ctx.log(message_id=record.message_id).info("republish.pruned")
            return
        try:
            await self._put_on_bus(record)
        except (BrokerUnavailable, PublishNotConfirmed, Unroutable) as exc:
            # The sender asks again if it still has no answer; nothing is lost here.
            self.ctx.log(message_id=record.message_id).warning(
                "republish.failed", error=exc.message
            )

    async def _put_on_bus(self, record: OutboxRecord) -> None:
        await self.ctx.bus.publish(
            self.ctx.names.bus,
            record.recipient,
            record.wire,
            content_type=CONTENT_TYPES[sniff_format(record.wire)],
            message_type=record.kind,
        )

    async def give_up(self, record: OutboxRecord, reason: str) -> None:
        """Mark a request undelivered (no receipt before it expired) and report it."""
        try:
            async with self.ctx.store.transaction() as tx:
                tx.set_outbox_state(
                    record.message_id,
                    OutboxState.UNDELIVERED,
                    only_from=(OutboxState.PENDING, OutboxState.SENT),
                )
                tx.audit(_record_event(EventName.UNDELIVERED, record, reason=reason))
        except StateConflict:
            return
        self.ctx.log(message_id=record.message_id).warning("request.undelivered", reason=reason)
        await self._on_undelivered(record)

    async def _undeliverable(self, record: OutboxRecord, exc: Unroutable) -> None:
        if record.kind == Kind.REQUEST.value:
            await self.give_up(record, exc.message)
            return
        async with self.ctx.store.transaction() as tx:
            tx.set_outbox_state(record.message_id, OutboxState.UNDELIVERED)
            tx.audit(_record_event(EventName.UNDELIVERED, record, reason=exc.message))


def _record_event(event: EventName, record: OutboxRecord, **detail: Any) -> AuditEvent:
    return record_event(event, record, recipient=record.recipient, **detail)
