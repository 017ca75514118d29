"""The node side of the collector handoff: ship the local audit log, checkpoint it.

A node loop reads its store's audit records past the shipped cursor, signs a checkpoint
at every N-th seq, adds the wire bytes of the envelopes the records name (by digest, for
services the catalog archives in full: the collector's envelope archive), publishes them in
one batch to the durable audit queue with a
publisher confirm, and only then moves the cursor (kept in the store). A broker or
collector outage only delays shipping: the records stay in the store until confirmed.

Several processes of a party share one chain, so one of them ships it at a time: the one
holding the store's ``audit-shipper`` lease (taken over when its holder dies). Each shipping
the whole chain would send every batch and checkpoint once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from exchange.audit.ack import open_ack
from exchange.audit.batch import BATCH_CONTENT_TYPE, Batch, seal_batch
from exchange.audit.checkpoint import make_checkpoint
from exchange.audit.config import AuditSettings
from exchange.catalog.model import ArchiveMode, Role
from exchange.exceptions import (
    BrokerUnavailable,
    ExchangeError,
    PublishNotConfirmed,
    StoreError,
    Unroutable,
)
from exchange.ledger.event import AuditRecord
from exchange.transport.users import broker_user, url_user

if TYPE_CHECKING:
    from exchange.node.context import NodeContext
    from exchange.transport.delivery import Delivery

SHIPPED = "audit.shipped_seq"
SHIPPED_CHECKPOINT = "audit.shipped_checkpoint_seq"
CHECKPOINTED = "audit.checkpoint_seq"
LEASE = "audit-shipper"
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
_SHUTDOWN_SECONDS = 3.0
# Envelope bytes per batch: with base64 a batch stays well under the collector's limit.
MAX_ARCHIVE_BYTES = 16 * 1024 * 1024


class Shipper:
    """Ships one party's audit records and checkpoints to the collector's queue."""

    def __init__(
        self, context: NodeContext, settings: AuditSettings, *, owner: str, lease: timedelta
    ) -> None:
        """``owner`` names this process in the store's ``audit-shipper`` lease, which lasts
        ``lease`` unless renewed: how long shipping waits when its holder dies."""
        self.ctx = context
        self.settings = settings
        self.owner = owner
        self._lease = lease
        self._held_until: datetime | None = None
        self._failures = 0
        # Under per-party broker users (`exchange topology users`) the broker vouches for who
        # published a batch: the collector compares that user with the batch's party.
        own = broker_user(context.names, context.party)
        self._user_id = own if url_user(context.bus.url) == own else None

    async def run(self) -> None:
        """Ship while this process holds the lease, until cancelled; on cancellation,
        checkpoint the head, ship what it can and give the lease up."""
        try:
            while True:
                try:
                    if not await self.holds_lease():
                        await asyncio.sleep(self._lease.total_seconds() / 4)
                        continue
                    shipped = await self.ship_once()
                except StoreError as exc:
                    self.ctx.log().warning("audit.ship_store_error", error=exc.message)
                    shipped = -1
                if shipped >= self.settings.batch_size:
                    continue  # a full batch: more is waiting
                # A part batch waits too: under load, batches fill up instead of each ship (a
                # read, a confirmed publish, a cursor commit) carrying a handful of records.
                delay = self.settings.ship_interval
                if shipped < 0:
                    delay = _BACKOFF[min(self._failures, len(_BACKOFF) - 1)]
                    self._failures += 1
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.shutdown(), _SHUTDOWN_SECONDS)
            raise

    async def holds_lease(self) -> bool:
        """Whether this process ships: take or renew the lease (renewed once half is used).

        Raises:
            StoreError: the store cannot be read or written.
        """
        now = self.ctx.clock.now()
        if self._held_until is not None and now < self._held_until - self._lease / 2:
            return True
        until = now + self._lease
        held = await self.ctx.store.take_lease(LEASE, self.owner, now, until)
        self._held_until = until if held else None
        return held

    async def ship_once(self) -> int:
        """Ship one batch; return the records shipped, 0 if nothing new, -1 if it must wait.

        The caller holds the lease (``holds_lease``): the cursor is not guarded against
        another process shipping at the same time (a batch sent twice is harmless, since the
        collector keeps the first copy of each record, but wasted).

        Raises:
            StoreError: the store cannot be read or written.
        """
        store = self.ctx.store
        cursor = int(await store.get_meta(SHIPPED) or 0)
        records = await store.audit(since_seq=cursor, limit=self.settings.batch_size)
        records, envelopes = await self._envelopes(records)
        every = self.settings.checkpoint_every
        for record in records:
            if every > 0 and record.seq % every == 0:
                await self._checkpoint(record.seq, record.hash)
        shipped_cp = int(await store.get_meta(SHIPPED_CHECKPOINT) or 0)
        checkpoints = await store.checkpoints(since_seq=shipped_cp)
        if not records and not checkpoints:
            return 0
        batch = Batch(self.ctx.party, records, [body for _, body in checkpoints], envelopes)
        body = seal_batch(batch, self.ctx.credentials, self.ctx.clock.now())
        try:
            await self.ctx.bus.publish(
                self.ctx.names.bus,
                self.ctx.names.audit,
                body,
                content_type=BATCH_CONTENT_TYPE,
                message_type="audit",
                user_id=self._user_id,
            )
        except (BrokerUnavailable, PublishNotConfirmed, Unroutable) as exc:
            self.ctx.log().info("audit.ship_deferred", error=exc.message, pending=len(records))
            return -1
        self._failures = 0
        if records:
            await store.set_meta(SHIPPED, str(records[-1].seq))
        if checkpoints:
            await store.set_meta(SHIPPED_CHECKPOINT, str(checkpoints[-1][0]))
        return max(len(records), 1)

    async def _envelopes(
        self, records: Sequence[AuditRecord]
    ) -> tuple[Sequence[AuditRecord], dict[str, bytes]]:
        """The wire bytes of the envelopes ``records`` name, by digest; fewer records when
        their envelopes would pass ``MAX_ARCHIVE_BYTES`` (the rest go in the next batch).

        Pruned content (and metadata-only parties) has no bytes left to archive.
        """
        mode = self.ctx.catalog.data.archive_mode
        stored = await self.ctx.store.wires(
            {
                r.event.message_id
                for r in records
                if r.event.message_id
                and r.event.digest
                and mode(r.event.service) is ArchiveMode.FULL
            }
        )
        found: dict[str, bytes] = {}
        size = 0
        for index, record in enumerate(records):
            digest = record.event.digest
            wire = stored.get(digest) if digest is not None else None
            if digest is None or wire is None or digest in found:
                continue
            if size + len(wire) > MAX_ARCHIVE_BYTES and index > 0:
                return records[:index], found
            found[digest] = wire
            size += len(wire)
        return records, found

    async def on_ack(self, message: Delivery) -> None:
        """Keep the collector's signed head acknowledgment in the store, then ack.

        An acknowledgment that does not verify is logged and dropped, never kept.
        """
        ctx = self.ctx
        try:
            collector = ctx.catalog.identity(Role.COLLECTOR).id
            ack = open_ack(message.body, ctx.trust, collector, ctx.party)
        except ExchangeError as exc:
            ctx.log().error("audit.ack_refused", code=exc.code, error=exc.message)
            await message.reject(requeue=False)
            return
        try:
            await ctx.store.add_ack(ack.seq, message.body)
        except StoreError as exc:
            ctx.log().warning("audit.ack_store_error", error=exc.message)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def shutdown(self) -> None:
        """As the lease's holder: sign a checkpoint at the head of the chain, try to ship
        what is left, and give the lease up for another process to take at once."""
        if not await self.holds_lease():
            return  # the holder checkpoints and ships; this process's records are in its chain
        head = await self.ctx.store.audit_head()
        if head is not None:
            await self._checkpoint(*head)
        while await self.ship_once() > 0:
            pass
        now = self.ctx.clock.now()
        await self.ctx.store.take_lease(LEASE, self.owner, now, now)
        self._held_until = None

    async def _checkpoint(self, seq: int, head_hash: str) -> None:
        store = self.ctx.store
        if int(await store.get_meta(CHECKPOINTED) or 0) >= seq:
            return
        checkpoint = make_checkpoint(self.ctx.credentials, seq, head_hash, self.ctx.clock.now())
        await store.add_checkpoint(seq, checkpoint.dumps())
        await store.set_meta(CHECKPOINTED, str(seq))
