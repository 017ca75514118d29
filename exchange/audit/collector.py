"""The central audit collector: consumes every node's batches, acks once they are stored.

Each batch is checked on arrival (its party's chain continues from the head, its
checkpoints are signed by that party) and stored in one transaction; a redelivered
batch changes nothing. Gaps and broken links are stored as findings and logged.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from exchange._clock import Clock
from exchange.audit.batch import Batch, decode_batch
from exchange.audit.central.base import CentralStore, Finding, IngestOutcome
from exchange.audit.checkpoint import parse_checkpoint, verify_checkpoint
from exchange.exceptions import AuditTampered, CheckpointInvalid
from exchange.pki.trust import TrustStore
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from exchange.transport.topology import apply_topology

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel

    from exchange.transport.delivery import Delivery

log = structlog.get_logger("exchange.audit")


class Collector:
    """Moves audit batches from the durable audit queue into the central store."""

    def __init__(
        self,
        bus: Bus,
        names: BusNames,
        store: CentralStore,
        trust: TrustStore | None,
        clock: Clock,
    ) -> None:
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

        async def declare(channel: AbstractChannel) -> None:
            await apply_topology(channel, self.names, [])

        self.bus.on_connect(declare)
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
        """Store a batch, then ack; requeue if the store failed; drop what is not a batch."""
        try:
            batch = decode_batch(message.body)
        except AuditTampered as exc:
            log.error("audit.malformed_batch", error=exc.message, size=len(message.body))
            await message.reject(requeue=False)
            return
        try:
            async with self._locks.setdefault(batch.party, asyncio.Lock()):
                outcome = await self.ingest(batch)
        except Exception as exc:  # store down: the broker keeps the batch
            log.error("audit.store_failed", party=batch.party, error=str(exc))
            await message.nack(requeue=True)
            return
        await message.ack()
        for finding in outcome.findings:
            log.warning(
                f"audit.{finding.kind}", party=finding.party, seq=finding.seq, detail=finding.detail
            )

    async def ingest(self, batch: Batch) -> IngestOutcome:
        """Check the batch's checkpoints, then store it (one transaction in the store)."""
        now = self.clock.now()
        good: list[bytes] = []
        rejected: list[Finding] = []
        by_seq = {r.seq: r for r in batch.records}
        for body in batch.checkpoints:
            try:
                checkpoint = parse_checkpoint(body)
                if self.trust is not None:
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
        return await self.store.ingest(
            Batch(batch.party, batch.records, good), now, rejected=rejected
        )
