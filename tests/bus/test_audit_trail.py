"""Every step leaves a record: a 500-request run over the real broker, every fact on record.

Five paths of 100 requests each: answered, faulted, delivered twice (the request, and so
its receipt and response), receipt before the broker's confirm, and quarantined. For each
request the facts its path must leave at the requester and at the provider are listed and
looked up in the two parties' audit chains.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from exchange.config import Settings
from exchange.ledger.event import AuditEvent
from exchange.node import IncomingRequest, Node, NodeConfig, Notice, Reject
from exchange.signing import WireFormat, digest
from exchange.transport.names import BusNames
from tests.bus.conftest import MakeNode
from tests.bus.helpers import RawBus, eventually

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]

PER_PATH = 100
TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}
GRANTED = {"decision": "granted", "permit_number": "TF-TRAIL"}
# No resend while the run is busy: every duplicate here is one the test made.
PATIENT = NodeConfig(
    wire_format=WireFormat.JSON,
    receipt_timeouts=(600.0,),
    handler_retry_delays=(0.1,),
    publish_grace=600.0,
    poll_interval=0.05,
    handler_concurrency=32,
)

Fact = tuple[str, str]  # (event, kind of the message it is about)
REQUESTER_ANSWERED: set[Fact] = {
    ("created", "request"),
    ("confirmed", "request"),
    ("receipt-received", "receipt"),
    ("response-received", "response"),
}
PROVIDER_ANSWERED: set[Fact] = {
    ("received", "request"),
    ("receipt-sent", "receipt"),
    ("confirmed", "receipt"),
    ("responded", "response"),
    ("confirmed", "response"),
    ("answered", "request"),
}
REQUESTER_FAULTED: set[Fact] = REQUESTER_ANSWERED - {("response-received", "response")} | {
    ("fault-received", "fault")
}
PROVIDER_FAULTED: set[Fact] = PROVIDER_ANSWERED - {
    ("responded", "response"),
    ("confirmed", "response"),
    ("answered", "request"),
} | {("fault-sent", "fault"), ("confirmed", "fault"), ("rejected", "request")}
DUPLICATES: set[Fact] = {("duplicate", "receipt"), ("duplicate", "response")}


def facts_by_request(events: Iterable[AuditEvent]) -> dict[str, set[Fact]]:
    """Each request's (event, kind) facts: a request's own, and its answers' by correlation."""
    facts: dict[str, set[Fact]] = defaultdict(set)
    for e in events:
        about = e.message_id if e.kind == "request" else e.correlation_id
        if about is not None and e.kind is not None:
            facts[about].add((e.event, e.kind))
    return facts


async def events_of(node: Node) -> list[AuditEvent]:
    """Every audit event of a node (its chain grows past one page here)."""
    events: list[AuditEvent] = []
    seq = 0
    while records := await node.ctx.store.audit(seq):
        events.extend(r.event for r in records)
        seq = records[-1].seq
    return events


async def test_every_request_of_a_500_request_run_leaves_every_fact(
    make_node: MakeNode, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answered, faulted, duplicated, receipt-first and quarantined: no fact is missing."""
    provider = await make_node("improvement", PATIENT)
    sender = await make_node("single-center", PATIENT)
    receipts: set[str] = set()
    sender.on_notice(lambda n: receipts.add(n.request_id) if n.kind == "receipt" else None)

    @provider.handler("tree-felling-permit")
    async def decide(request: IncomingRequest) -> dict[str, Any]:
        if (request.envelope.case_id or "").startswith("faulted"):
            raise Reject("invalid-content", "the plot is not in the register")
        return GRANTED

    async def send(path: str) -> list[str]:
        return await asyncio.gather(
            *(
                sender.request("tree-felling-permit", TREES, case_id=f"{path}-{i}")
                for i in range(PER_PATH)
            )
        )

    async def answered(ids: list[str]) -> list[Notice]:
        return await asyncio.gather(*(sender.wait_answer(i, timeout=120) for i in ids))

    # Receipt before confirm, forced: the sender writes no broker confirm until every
    # request of the path has its receipt.
    all_receipted = asyncio.Event()
    flush = sender.outbound._flush_confirms

    async def confirm_after_receipts() -> None:
        await all_receipted.wait()
        await flush()

    monkeypatch.setattr(sender.outbound, "_flush_confirms", confirm_after_receipts)
    receipt_first = await send("receipt-first")
    await eventually(
        _all_in(receipt_first, receipts), 120, "receipts of the receipt-first requests"
    )
    all_receipted.set()
    await sender.outbound.drain()
    monkeypatch.setattr(sender.outbound, "_flush_confirms", flush)

    paths = {path: await send(path) for path in ("answered", "faulted", "duplicated")}
    paths["receipt-first"] = receipt_first
    for ids in paths.values():
        await answered(ids)
    for request_id in paths["duplicated"]:  # the same request again, as a resend would
        record = await sender.ctx.store.get_outbox(request_id)
        assert record is not None
        await sender.outbound.republish(record)
    names = BusNames(settings.bus_prefix)
    raw_bus = await RawBus.connect(names.bus)
    try:
        garbage = [f"not an envelope {i}".encode() for i in range(PER_PATH)]
        for raw in garbage:
            await raw_bus.publish("improvement", raw)

        expected_requester = {
            **dict.fromkeys(paths["answered"], REQUESTER_ANSWERED),
            **dict.fromkeys(paths["faulted"], REQUESTER_FAULTED),
            **dict.fromkeys(paths["duplicated"], REQUESTER_ANSWERED | DUPLICATES),
            **dict.fromkeys(paths["receipt-first"], REQUESTER_ANSWERED),
        }
        expected_provider = {
            **dict.fromkeys(paths["answered"], PROVIDER_ANSWERED),
            **dict.fromkeys(paths["faulted"], PROVIDER_FAULTED),
            **dict.fromkeys(paths["duplicated"], PROVIDER_ANSWERED | {("duplicate", "request")}),
            **dict.fromkeys(paths["receipt-first"], PROVIDER_ANSWERED),
        }
        quarantined = {digest(raw) for raw in garbage}

        async def missing() -> dict[str, Any]:
            at_sender = facts_by_request(await events_of(sender))
            provider_events = await events_of(provider)
            at_provider = facts_by_request(provider_events)
            lacking: dict[str, list[Any]] = {
                f"{party} {request_id}": sorted(facts - found[request_id])
                for party, expected, found in (
                    ("requester", expected_requester, at_sender),
                    ("provider", expected_provider, at_provider),
                )
                for request_id, facts in expected.items()
                if not facts <= found[request_id]
            }
            on_record = {e.digest for e in provider_events if e.event == "quarantined"}
            if not_quarantined := quarantined - on_record:
                lacking["quarantined"] = sorted(not_quarantined)
            return lacking

        async def complete() -> bool:
            return not await missing()

        try:
            await eventually(complete, 120, "every fact of every request on record")
        except AssertionError:
            lacking = await missing()
            pytest.fail(f"{len(lacking)} requests lack facts, e.g. {list(lacking.items())[:3]}")
        overtaken = {
            e.message_id
            for e in await events_of(sender)
            if e.event == "confirmed" and e.detail.get("overtaken")
        }
        assert overtaken == set(receipt_first)  # the path was the receipt-first one indeed
    finally:
        await raw_bus.take_all(names.quarantine)
        await raw_bus.close()


def _all_in(ids: list[str], seen: set[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return seen.issuperset(ids)

    return check
