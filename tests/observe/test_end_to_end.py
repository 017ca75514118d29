"""A short real exchange (two nodes, the real broker, the collector), scraped over HTTP: the
counters match the audit logs, the gauges the stores, and every probe answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.audit.central import SQLiteCentralStore
from exchange.audit.collector import Collector
from exchange.config import Settings
from exchange.ledger.event import EventName
from exchange.node import Node
from exchange.node.handlers import IncomingRequest
from exchange.observe import Observer, observe_collector, observe_node
from exchange.observe.metrics import NodeMetrics
from exchange.signing import WireFormat
from exchange.testing import ThrowawayPKI
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.audit._live import TREES, until
from tests.bus.conftest import AMQP_URL, MakeNode
from tests.observe._scrape import Samples, by, get, scrape, total

pytestmark = pytest.mark.rabbit

HOUSEKEEPING = {EventName.CONTENT_PRUNED, EventName.HEAD_ACKNOWLEDGED}


@pytest.fixture
async def collector(
    settings: Settings, live_pki: ThrowawayPKI, tmp_path: Path
) -> AsyncIterator[tuple[Collector, Observer]]:
    """The audit collector on the test's prefix, with its probe server on a free port."""
    running = Collector(
        Bus(AMQP_URL),
        BusNames(settings.bus_prefix),
        SQLiteCentralStore(tmp_path / "central.db"),
        live_pki.trust(),
        SYSTEM_CLOCK,
        live_pki.credentials("collector"),
    )
    observer = observe_collector(running, "collector")
    await running.start()
    await observer.start()
    try:
        yield running, observer
    finally:
        await observer.stop()
        await running.stop()


async def observed_node(make_node: MakeNode, party: str) -> tuple[Node, Observer]:
    """A node started with its observer attached (as build_node's companions attach it)."""
    made: list[Observer] = []

    def observe(node: Node) -> Observer:
        made.append(observe_node(node))
        return made[-1]

    node = await make_node(party, companions=[observe])
    return node, made[0]


async def expected_envelopes(node: Node, metrics: NodeMetrics) -> dict[tuple[str, ...], float]:
    """(kind, service, outcome) -> the node's audit records of it since its metrics began."""
    counted = Counter(
        (r.event.kind or "unknown", r.event.service or "unknown", r.event.event.value)
        for r in await node.ctx.store.audit(metrics.since, 1_000_000)
        if r.event.event not in HOUSEKEEPING
    )
    return {key: float(value) for key, value in counted.items()}


async def events(node: Node, name: EventName) -> int:
    """How many audit records ``name`` the node has."""
    return sum(r.event.event is name for r in await node.ctx.store.audit(0, 1_000_000))


async def test_counters_match_the_audit_logs(
    make_node: MakeNode, collector: tuple[Collector, Observer]
) -> None:
    """After three requests (one handler failure among them) every scrape agrees with the logs."""
    central, central_observer = collector
    provider, provider_observer = await observed_node(make_node, "improvement")
    center, center_observer = await observed_node(make_node, "single-center")
    failed_once: set[str] = set()

    @provider.handler("tree-felling-permit")
    async def permit(request: IncomingRequest) -> dict[str, Any]:
        if request.envelope.case_id == "KZN-M-2" and request.message_id not in failed_once:
            failed_once.add(request.message_id)
            raise RuntimeError("the registry is down for a moment")
        return {"decision": "granted", "permit_number": "TF-1"}

    sent = [
        await center.request(
            "tree-felling-permit", TREES, case_id=f"KZN-M-{i}", wire_format=WireFormat.JSON
        )
        for i in range(3)
    ]
    for request_id in sent:
        assert (await center.wait_answer(request_id, timeout=30)).kind == "response"

    async def shipped() -> bool:
        for node in (provider, center):
            head = await node.ctx.store.audit_head()
            if await central.store.head(node.party) != head:
                return False
        return True

    await until(shipped, timeout=30, what="the collector to hold both chains")

    for node, observer in ((provider, provider_observer), (center, center_observer)):
        assert isinstance(observer.metrics, NodeMetrics)
        metrics = observer.metrics
        samples: Samples = {}

        async def agree(
            node: Node = node, metrics: NodeMetrics = metrics, port: int = observer.port
        ) -> bool:
            nonlocal samples
            samples = await scrape(port)
            got = by(samples, "exchange_envelopes_total", "kind", "service", "outcome")
            # The shipper moves its cursor just after the collector may have stored the batch.
            shipped = total(samples, "exchange_audit_unshipped_records") == 0
            return shipped and got == await expected_envelopes(node, metrics)

        await until(agree, timeout=15, what=f"{node.party}'s counters to match its audit log")
        assert total(samples, "exchange_audit_shipping_lag_seconds") == 0
        assert total(samples, "exchange_queue_messages", queue="inbox") == 0
        assert total(samples, "exchange_certificate_expiry_seconds", certificate="signing") > 0
        assert total(samples, "exchange_crl_next_update_seconds") > 0
        status, body = await get(observer.port, "/ready")
        assert (status, body["checks"]) == (200, dict.fromkeys(body["checks"], "ok"))
        assert set(body["checks"]) == {"broker", "store", "trust", "certificate"}
        assert (await get(observer.port, "/health"))[0] == 200

    center_samples = await scrape(center_observer.port)
    receipts = await events(center, EventName.RECEIPT_RECEIVED)
    responses = await events(center, EventName.RESPONSE_RECEIVED)
    assert receipts == responses == 3
    assert total(center_samples, "exchange_request_receipt_seconds_count") == receipts
    assert total(center_samples, "exchange_request_response_seconds_count") == responses
    assert total(center_samples, "exchange_outbox_depth") == 0  # every request answered

    provider_samples = await scrape(provider_observer.port)
    failures = await events(provider, EventName.RETRIED) + await events(provider, EventName.DEAD)
    assert failures == 1
    assert total(provider_samples, "exchange_handler_failures_total") == failures
    assert total(provider_samples, "exchange_inbox_depth") == 0  # nothing open, nothing dead
    assert total(provider_samples, "exchange_envelopes_total", outcome="received") == 3

    central_samples = await scrape(central_observer.port)
    for node in (provider, center):
        head = await node.ctx.store.audit_head()
        assert head is not None
        assert total(central_samples, "exchange_central_head_seq", party=node.party) == head[0]
    assert total(central_samples, "exchange_queue_messages", queue="audit") == 0
    status, body = await get(central_observer.port, "/ready")
    assert (status, body["status"]) == (200, "ready")


async def test_ready_names_a_lost_broker(make_node: MakeNode) -> None:
    """With its bus closed, a node's /ready is 503 naming the broker; the rest stays ok."""
    node, observer = await observed_node(make_node, "improvement")
    status, body = await get(observer.port, "/ready")
    assert status == 200, body
    await node.ctx.bus.stop()  # this node's own connection; the shared broker runs on
    status, body = await get(observer.port, "/ready")
    assert status == 503
    assert body["status"] == "not-ready"
    assert "not connected to RabbitMQ" in body["checks"]["broker"]
    assert {k: v for k, v in body["checks"].items() if k != "broker"} == {
        "store": "ok",
        "trust": "ok",
        "certificate": "ok",
    }
    assert (await get(observer.port, "/health"))[0] == 200
    samples = await scrape(observer.port)  # metrics still answer; what is unknown says so
    assert total(samples, "exchange_metrics_refresh_errors_total", source="broker") >= 1


async def test_collector_not_ready_before_it_connects(
    settings: Settings, live_pki: ThrowawayPKI, tmp_path: Path
) -> None:
    """A collector whose bus never connected and whose store is not open is 503 for both."""
    idle = Collector(
        Bus(AMQP_URL),
        BusNames(settings.bus_prefix),
        SQLiteCentralStore(tmp_path / "central.db"),
        live_pki.trust(),
        SYSTEM_CLOCK,
        live_pki.credentials("collector"),
    )
    observer = observe_collector(idle, "collector")
    await observer.start()
    try:
        status, body = await get(observer.port, "/ready")
    finally:
        await observer.stop()
    assert status == 503
    assert "not connected" in body["checks"]["broker"]
    assert "not open" in body["checks"]["store"]
    assert body["checks"]["trust"] == "ok"
