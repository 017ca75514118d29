"""The central log as it grows: every party's records, verified, the moment the collector
stored them.

The collector publishes each batch it accepted, unchanged, to the ``audit.feed`` fanout
exchange; a follower checks each batch's signature again (it trusts the party's key, not
the collector or the bus) and yields its records once each, typed (``EventName``). For the
support console and metrics: what happened before the follower started is in the central
store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog

from exchange.audit.batch import open_batch
from exchange.exceptions import ExchangeError
from exchange.ledger.event import AuditRecord
from exchange.pki.trust import TrustStore
from exchange.transport.feed import FeedSubscription
from exchange.transport.names import BusNames

log = structlog.get_logger("exchange.audit")


class CentralFeed:
    """Follows what the collector stores, as verified, typed audit records."""

    def __init__(self, url: str, names: BusNames, trust: TrustStore) -> None:
        self.trust = trust
        self._subscription = FeedSubscription(url, names.audit_feed)
        self._last: dict[str, int] = {}  # per party: batches overlap when a node reships

    async def open(self) -> None:
        """Start following (records stored from now on).

        Raises:
            BrokerUnavailable (broker-unavailable).
        """
        await self._subscription.open()

    async def close(self) -> None:
        """Stop following."""
        await self._subscription.close()

    async def records(self) -> AsyncIterator[AuditRecord]:
        """Each party's new records in seq order, once each, until closed."""
        async for body in self._subscription.bodies():
            try:
                batch = open_batch(body, self.trust).batch
            except ExchangeError as exc:  # the collector publishes only what it accepted
                log.error("audit.feed_refused", code=exc.code, error=exc.message)
                continue
            for record in batch.records:
                if record.seq > self._last.get(batch.party, 0):
                    self._last[batch.party] = record.seq
                    yield record
