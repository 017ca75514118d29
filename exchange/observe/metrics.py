"""A node's Prometheus metrics: counters from its typed event stream, gauges from its store.

Counters and latency histograms follow ``Node.follow()`` from the head of the party's
audit chain at start (process-lifetime counters, as Prometheus expects), so every count
is a count of audit records: ``exchange_envelopes_total{outcome="received"}`` goes up
exactly when a ``received`` record is committed. Depths, overdue requests, the audit
shipping lag and certificate lifetimes are read when scraped (``refresh``). Each node
has a registry of its own, so several nodes (tests, the demo) live in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exchange.exceptions import ExchangeError
from exchange.ledger.event import AuditRecord, EventName
from exchange.node.node import Node
from exchange.node.shipper import SHIPPED
from exchange.node.store.base import OPEN_INBOX, InboxState, OutboxState
from exchange.observe.gauges import IdentityGauges, QueueGauges, refresh_errors

# Seconds from a request to its receipt (a broker round trip and a verification) ...
RECEIPT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
# ... and to its response, which may take the regulated deadline: up to weeks.
RESPONSE_BUCKETS = (
    *(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600),
    *(86_400 * days for days in (1, 3, 7, 14, 30, 60)),
)
# Events that are housekeeping, not a step of an envelope.
_HOUSEKEEPING = frozenset({EventName.CONTENT_PRUNED, EventName.HEAD_ACKNOWLEDGED})
_HANDLER_FAILED = frozenset({EventName.RETRIED, EventName.DEAD})
_FINAL_ANSWER = {
    EventName.RESPONSE_RECEIVED: "response",
    EventName.FAULT_RECEIVED: "fault",
}
_OUTBOX_OPEN = (OutboxState.PENDING, OutboxState.SENT, OutboxState.RECEIPTED)
_INBOX_DEPTH = (*OPEN_INBOX, InboxState.DEAD)
_PAGE = 10_000  # open requests looked at for the overdue count


class NodeMetrics:
    """The metrics of one party's node, in a registry of their own."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.party = node.party
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("party", "kind", "service", "outcome")
        self.envelopes = Counter(
            "exchange_envelopes",
            "Audited steps of envelopes by kind, service and outcome (the audit event name).",
            labels,
            registry=self.registry,
        )
        self.handler_failures = Counter(
            "exchange_handler_failures",
            "Handler runs that failed (retried later, or dead past the retry limit).",
            ("party", "service"),
            registry=self.registry,
        )
        self.receipt_latency = Histogram(
            "exchange_request_receipt_seconds",
            "From a request this party created to the provider's signed receipt.",
            ("party", "service"),
            buckets=RECEIPT_BUCKETS,
            registry=self.registry,
        )
        self.response_latency = Histogram(
            "exchange_request_response_seconds",
            "From a request this party created to its final answer (response or fault).",
            ("party", "service", "answer"),
            buckets=RESPONSE_BUCKETS,
            registry=self.registry,
        )
        self.outbox = Gauge(
            "exchange_outbox_depth",
            "Messages this party signed that are not finished, by state.",
            ("party", "state"),
            registry=self.registry,
        )
        self.inbox = Gauge(
            "exchange_inbox_depth",
            "Requests this party received that are open (received, waiting) or dead (failed "
            "past the retry limit: the store's dead letters), by state.",
            ("party", "state"),
            registry=self.registry,
        )
        self.overdue = Gauge(
            "exchange_overdue_requests",
            "Open requests this party received that are past their regulated deadline.",
            ("party",),
            registry=self.registry,
        )
        self.unshipped = Gauge(
            "exchange_audit_unshipped_records",
            "Audit records not yet confirmed on the collector's queue.",
            ("party",),
            registry=self.registry,
        )
        self.shipping_lag = Gauge(
            "exchange_audit_shipping_lag_seconds",
            "Age of the oldest audit record not yet shipped (0 when all are shipped).",
            ("party",),
            registry=self.registry,
        )
        self.refresh_errors = refresh_errors(self.registry)
        self.queues = QueueGauges(self.registry, self.party)
        self.identity = IdentityGauges(self.registry, self.party)
        self._created: dict[str, tuple[datetime, str]] = {}  # open requests: created at, service
        self.since = 0  # the audit seq counting starts after (the head when started)
        self._task: asyncio.Task[None] | None = None

    # --- counters: the event stream -------------------------------------------------------

    async def start(self) -> None:
        """Follow the node's events from its audit head on (the node is started)."""
        self.since = await self.node.last_event()
        self._task = asyncio.create_task(self._follow(self.since), name=f"{self.party}-metrics")

    async def stop(self) -> None:
        """Stop following."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, after: int) -> None:
        while True:
            try:
                async for record in self.node.follow(after):
                    after = record.seq  # a record that cannot be counted is not retried forever
                    await self.observe(record)
            except Exception as exc:  # the store is away (or a bug): counting must go on
                self.node.log().warning("metrics.follow_failed", error=repr(exc))
                await asyncio.sleep(1.0)

    async def observe(self, record: AuditRecord) -> None:
        """Count one audited step (the follower calls it for each, in seq order)."""
        event = record.event
        name = event.event
        if name in _HOUSEKEEPING:
            return
        service = event.service or "unknown"
        self.envelopes.labels(self.party, event.kind or "unknown", service, name.value).inc()
        if name in _HANDLER_FAILED:
            self.handler_failures.labels(self.party, service).inc()
        if name is EventName.CREATED and event.message_id and event.kind == "request":
            self._created[event.message_id] = (record.at, service)
        elif name is EventName.RECEIPT_RECEIVED:
            created = await self._created_at(event.correlation_id, keep=True)
            if created is not None:
                seconds = (record.at - created[0]).total_seconds()
                self.receipt_latency.labels(self.party, created[1]).observe(seconds)
        elif name in _FINAL_ANSWER:
            created = await self._created_at(event.correlation_id, keep=False)
            if created is not None:
                seconds = (record.at - created[0]).total_seconds()
                answer = _FINAL_ANSWER[name]
                self.response_latency.labels(self.party, created[1], answer).observe(seconds)
        elif name is EventName.UNDELIVERED and event.message_id is not None:
            self._created.pop(event.message_id, None)

    async def _created_at(
        self, request_id: str | None, *, keep: bool
    ) -> tuple[datetime, str] | None:
        """When (and of which service) this party created a request: remembered from its
        ``created`` event, or read from the outbox for one created before the follower."""
        if request_id is None:
            return None
        known = self._created.get(request_id) if keep else self._created.pop(request_id, None)
        if known is not None:
            return known
        sent = await self.node.sent_request(request_id)
        return None if sent is None else (sent.created_at, sent.service)

    # --- gauges: read when scraped --------------------------------------------------------

    async def refresh(self) -> None:
        """Read depths, the overdue count, the shipping lag and lifetimes for a scrape."""
        node = self.node
        now = node.ctx.clock.now()
        try:
            await self._store_gauges(now)
        except ExchangeError as exc:
            self.refresh_errors.labels(self.party, "store").inc()
            node.log().warning("metrics.store_unreadable", error=exc.message)
        names = node.ctx.names
        queues = {
            "inbox": names.inbox(self.party),
            "dlq": names.dead_letters(self.party),
            "quarantine": names.quarantine,
        }
        if not await self.queues.refresh(node.ctx.bus, queues):
            self.refresh_errors.labels(self.party, "broker").inc()
        self.identity.refresh(node.ctx.credentials.certificate, node.ctx.trust, now)

    async def _store_gauges(self, now: datetime) -> None:
        store = self.node.ctx.store
        for outbox_state in _OUTBOX_OPEN:
            self.outbox.labels(self.party, outbox_state.value).set(
                await store.count_outbox(outbox_state)
            )
        for inbox_state in _INBOX_DEPTH:
            self.inbox.labels(self.party, inbox_state.value).set(
                await store.count_inbox(inbox_state)
            )
        overdue = 0
        for state in OPEN_INBOX:
            for record in await store.inbox_by_state(state, _PAGE):
                due_at = self.node.overdue.due_at(record)
                overdue += due_at is not None and now >= due_at
        self.overdue.labels(self.party).set(overdue)
        shipped = int(await store.get_meta(SHIPPED) or 0)
        head = await store.audit_head()
        self.unshipped.labels(self.party).set(max((head[0] if head else 0) - shipped, 0))
        oldest = await store.audit(since_seq=shipped, limit=1)
        lag = (now - oldest[0].at).total_seconds() if oldest else 0.0
        self.shipping_lag.labels(self.party).set(max(lag, 0.0))
