"""The central audit collector: consumes every node's batches, acks once they are stored.

Only a party can write its own audit trail: a batch must be signed by its party's key
(judged with the trust store, CRL included, at its signing time) and, where per-party
broker users are in use, published by that party's broker user. Anything else goes to the
audit quarantine with a finding, never into the log, and is not requeued.

The envelopes a batch carries (wire bytes by digest) are archived beside its records only
where they hash to a digest that a record of the batch carries, and only for services the
catalog archives in full (``exchange.audit.central.archive``); other bytes are refused with
a finding.

Each accepted batch is checked on arrival (its party's chain continues from the head, its
checkpoints are signed by that party) and stored in one transaction; a redelivered batch
changes nothing, and a different record for a stored seq is kept aside as a conflict. Gaps,
broken links and conflicts are stored as findings and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from exchange._clock import Clock
from exchange.audit.ack import ACK_CONTENT_TYPE, HeadAck, seal_ack
from exchange.audit.batch import BATCH_CONTENT_TYPE, Batch, claimed_party, open_batch
from exchange.audit.central.archive import ArchivePolicy, archivable, archive_all
from exchange.audit.central.base import CentralStore, Finding, IngestOutcome
from exchange.audit.checkpoint import parse_checkpoint, verify_checkpoint
from exchange.exceptions import (
    AuditConflict,
    BrokerUserMismatch,
    CheckpointInvalid,
    ExchangeError,
    Unroutable,
)
from exchange.ledger.event import AuditEvent, EventName
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.transport.base import Transport
from exchange.transport.names import BusNames
from exchange.transport.users import COLLECTOR, broker_user

if TYPE_CHECKING:
    from exchange.transport.delivery import Delivery

log = structlog.get_logger("exchange.audit")


class Collector:
    """Moves audit batches from the durable audit queue into the central store."""

    def __init__(
        self,
        bus: Transport,
        names: BusNames,
        store: CentralStore,
        trust: TrustStore,
        clock: Clock,
        credentials: Credentials | None = None,
        archive: ArchivePolicy = archive_all,
    ) -> None:
        """``credentials`` are the collector's own (catalog role ``collector``): with them it
        answers each accepted batch with a signed head acknowledgment to the party.
        ``archive`` says what to keep of a service's envelopes (the catalog's
        ``CatalogData.archive_mode``; without it, everything)."""
        self.credentials = credentials
        self.archive = archive
        self.bus = bus
        self.names = names
        self.store = store
        self.trust = trust
        self.clock = clock
        # The consumer runs deliveries as concurrent tasks; a party's batches must be stored
        # in the order they arrive (lock waiters are served first come, first served).
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        """Open the store, declare the audit queue and start consuming.

        Raises:
            StoreUnavailable (store-unavailable), BrokerUnavailable (broker-unavailable).
        """
        await self.store.open()

        self.bus.declare_on_connect(self.names, [])
        self.bus.subscribe(self.names.audit, self.on_delivery)
        try:
            await self.bus.start()
        except BaseException:
            await self.store.close()
            raise

    async def stop(self) -> None:
        """Stop consuming (unacked batches go back to the queue), close the store."""
        await self.bus.stop()
        await self.store.close()

    async def on_delivery(self, message: Delivery) -> None:
        """Verify and store a batch, then ack; requeue if the store failed; quarantine the rest."""
        try:
            batch = open_batch(message.body, self.trust).batch
            self.check_publisher(message.user_id, batch.party)
        except ExchangeError as exc:
            await self._quarantine(message, exc)
            return
        try:
            async with self._locks.setdefault(batch.party, asyncio.Lock()):
                outcome = await self.ingest(batch)
        except Exception as exc:  # store down: the broker keeps the batch
            log.error("audit.store_failed", party=batch.party, error=str(exc))
            await message.nack(requeue=True)
            return
        await self._acknowledge(batch.party)
        if any(f.kind == AuditConflict.code for f in outcome.findings):
            # The conflicting records are kept aside already; the signed batch is the proof
            # of who offered them.
            with contextlib.suppress(ExchangeError):
                await self._publish_quarantine(message.body, AuditConflict.code)
        await message.ack()
        await self._publish_feed(message.body)
        for finding in outcome.findings:
            log.warning(
                f"audit.{finding.kind}", party=finding.party, seq=finding.seq, detail=finding.detail
            )

    def check_publisher(self, user_id: str | None, party: str) -> None:
        """The broker user that published a batch (when the broker vouches for one) is its party's.

        Raises:
            BrokerUserMismatch (broker-user-mismatch): published by another broker user.
        """
        expected = broker_user(self.names, party)
        if user_id is not None and user_id != expected:
            raise BrokerUserMismatch(
                f"a batch of {party} was published by broker user {user_id}, not {expected}",
                party=party,
                user_id=user_id,
            )

    async def _quarantine(self, message: Delivery, error: ExchangeError) -> None:
        """Keep a refused batch in the audit quarantine with a finding; never requeue it."""
        party = claimed_party(message.body) or "unknown"
        seq = error.data.get("seq", 0)
        finding = Finding(
            party, seq if isinstance(seq, int) else 0, error.code, error.message, self.clock.now()
        )
        try:
            await self._publish_quarantine(message.body, error.code)
            await self.store.add_findings([finding])
        except Exception as exc:  # the evidence is not safe yet: let the broker keep the batch
            log.error("audit.quarantine_failed", party=party, code=error.code, error=str(exc))
            await message.nack(requeue=True)
            return
        log.error(
            "audit.batch_refused",
            party=party,
            code=error.code,
            error=error.message,
            size=len(message.body),
            user_id=message.user_id,
        )
        await message.reject(requeue=False)

    async def _acknowledge(self, party: str) -> None:
        """Chain the party's head into the collector's own chain; send it, signed, to the party.

        Best effort after the batch is stored: a redelivered batch is acknowledged again.
        """
        head = await self.store.head(party)
        if head is None:
            return
        try:
            now = self.clock.now()
            event = AuditEvent(
                EventName.HEAD_ACKNOWLEDGED,
                detail={"party": party, "seq": head[0], "hash": head[1]},
            )
            own = await self.store.append(self._own_party(), event, now)
            if self.credentials is None:
                return
            body = seal_ack(HeadAck(party, head[0], head[1], now, own.seq), self.credentials)
            await self.bus.publish(
                self.names.bus,
                self.names.audit_acks(party),
                body,
                content_type=ACK_CONTENT_TYPE,
                message_type="audit-ack",
            )
        except ExchangeError as exc:
            log.warning("audit.ack_failed", party=party, seq=head[0], error=exc.message)

    def _own_party(self) -> str:
        return self.credentials.party if self.credentials is not None else COLLECTOR

    async def _publish_feed(self, body: bytes) -> None:
        """The stored batch, unchanged, to whoever follows the log live (CentralFeed)."""
        try:
            await self.bus.publish(
                self.names.audit_feed,
                "",
                body,
                content_type=BATCH_CONTENT_TYPE,
                message_type="audit-batch",
            )
        except Unroutable:
            pass  # nobody follows right now
        except ExchangeError as exc:  # a live feed: followers read the gap from the store
            log.warning("audit.feed_failed", error=exc.message)

    async def _publish_quarantine(self, body: bytes, code: str) -> None:
        await self.bus.publish(
            self.names.bus,
            self.names.audit_quarantine,
            body,
            content_type="application/octet-stream",
            message_type=f"audit-refused:{code}",
        )

    async def ingest(self, batch: Batch) -> IngestOutcome:
        """Check the batch's checkpoints and envelopes, then store it (one transaction)."""
        now = self.clock.now()
        good: list[bytes] = []
        rejected: list[Finding] = []
        by_seq = {r.seq: r for r in batch.records}
        for body in batch.checkpoints:
            try:
                checkpoint = parse_checkpoint(body)
                verify_checkpoint(checkpoint, self.trust, batch.party)
                record = by_seq.get(checkpoint.seq)
                if record is not None and record.hash != checkpoint.hash:
                    raise CheckpointInvalid(
                        f"checkpoint at seq {checkpoint.seq} does not match the record",
                        seq=checkpoint.seq,
                    )
            except CheckpointInvalid as exc:
                seq = exc.data.get("seq", 0)
                rejected.append(
                    Finding(
                        batch.party,
                        seq if isinstance(seq, int) else 0,
                        "checkpoint-invalid",
                        exc.message,
                        now,
                    )
                )
                continue
            good.append(body)
        envelopes, refused = archivable(batch, self.archive, now)
        return await self.store.ingest(
            Batch(batch.party, batch.records, good, envelopes), now, rejected=[*rejected, *refused]
        )
