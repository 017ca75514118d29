"""Message content retention: a node loop empties the wire of finished messages.

With ``metadata_only`` a party keeps no content once a message is finished: the pruner
empties its wire at its next look. With ``message_retention`` finished messages keep their
content that long. Either way the rows stay (a pruned request still dedupes) with their
digests, and the audit chain is never touched: the store audits each prune instead.
Attachments go with the content: an object none of whose messages keeps its content is
removed from the attachment store (its hash stays in the signed envelopes and the audit).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING

from exchange.exceptions import ExchangeError
from exchange.node.store.base import PRUNED

if TYPE_CHECKING:
    from exchange.node.config import NodeConfig
    from exchange.node.context import NodeContext


def prune_cutoff(config: NodeConfig, now: datetime) -> datetime | None:
    """Finished messages older than this lose their content; None keeps it forever."""
    if config.metadata_only:
        return now
    if config.message_retention is not None:
        return now - config.message_retention
    return None


class Pruner:
    """Prunes one party's message content on the node's schedule."""

    def __init__(self, context: NodeContext) -> None:
        self.ctx = context

    @property
    def enabled(self) -> bool:
        """True when the party's settings ask for pruning at all."""
        return prune_cutoff(self.ctx.config, self.ctx.clock.now()) is not None

    async def prune_once(self) -> int:
        """Prune what is due now; return how many messages lost their content.

        Raises:
            StoreUnavailable (store-unavailable): the store cannot be written.
        """
        cutoff = prune_cutoff(self.ctx.config, self.ctx.clock.now())
        if cutoff is None:
            return 0
        pruned = await self.ctx.store.prune_messages(cutoff)
        await self.sweep_attachments()
        return pruned

    async def sweep_attachments(self) -> int:
        """Remove attachments no message with its content kept refers to; how many.

        An object noted less than ``attachment_settle`` seconds ago is left for a later
        look: its message may not be committed yet.
        """
        store = self.ctx.attachments
        removed = 0
        for sha256 in store.objects():
            refs, noted_at = store.refs(sha256)
            if time.time() - noted_at < self.ctx.config.attachment_settle:
                continue
            if not any([await self._retained(message_id) for message_id in refs]):
                store.remove(sha256)
                removed += 1
        if removed:
            self.ctx.log().info("attachments.removed", count=removed)
        return removed

    async def _retained(self, message_id: str) -> bool:
        for record in (
            await self.ctx.store.get_outbox(message_id),
            await self.ctx.store.get_inbox(message_id),
        ):
            if record is not None and record.wire != PRUNED:
                return True
        return False

    async def run(self) -> None:
        """Prune every ``prune_interval`` seconds until cancelled (returns at once if off)."""
        if not self.enabled:
            return
        while True:
            try:
                pruned = await self.prune_once()
            except ExchangeError as exc:
                self.ctx.log().warning("messages.prune_failed", error=exc.message)
            else:
                if pruned:
                    self.ctx.log().info("messages.pruned", count=pruned)
            await asyncio.sleep(self.ctx.config.prune_interval)
