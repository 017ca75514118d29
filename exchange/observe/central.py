"""The audit collector's Prometheus metrics: what the central log holds, read when scraped."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Gauge

from exchange.audit.collector import Collector
from exchange.exceptions import ExchangeError
from exchange.observe.gauges import IdentityGauges, QueueGauges, refresh_errors


class CollectorMetrics:
    """The central log per party (heads, findings), the audit queues and the collector's PKI."""

    def __init__(self, collector: Collector, party: str) -> None:
        self.collector = collector
        self.party = party
        self.registry = CollectorRegistry(auto_describe=True)
        self.head = Gauge(
            "exchange_central_head_seq",
            "The highest seq of each party's audit chain the central log holds.",
            ("party",),
            registry=self.registry,
        )
        self.findings = Gauge(
            "exchange_central_findings",
            "Findings on arrival (gaps, broken links, conflicts, refused batches), by kind.",
            ("kind",),
            registry=self.registry,
        )
        self.refresh_errors = refresh_errors(self.registry)
        self.queues = QueueGauges(self.registry, party)
        self.identity = IdentityGauges(self.registry, party)

    async def start(self) -> None:
        """Nothing runs between scrapes."""

    async def stop(self) -> None:
        """Nothing runs between scrapes."""

    async def refresh(self) -> None:
        """Read the central store, the audit queues and the lifetimes for a scrape."""
        collector = self.collector
        try:
            for party in await collector.store.parties():
                head = await collector.store.head(party)
                self.head.labels(party).set(head[0] if head else 0)
            kinds = Tally(finding.kind for finding in await collector.store.findings())
            for kind, count in kinds.items():
                self.findings.labels(kind).set(count)
        except ExchangeError:
            self.refresh_errors.labels(self.party, "store").inc()
        names = collector.names
        queues = {"audit": names.audit, "audit-quarantine": names.audit_quarantine}
        if not await self.queues.refresh(collector.bus, queues):
            self.refresh_errors.labels(self.party, "broker").inc()
        credentials = collector.credentials
        self.identity.refresh(
            credentials.certificate if credentials else None, collector.trust, collector.clock.now()
        )
