"""Bad traffic injected straight onto a party's inbox, past the sending node's own checks."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from exchange._clock import SYSTEM_CLOCK, SystemClock
from exchange._hazmat.xml import serialize
from exchange.codec.xml import encode_xml
from exchange.config import Settings
from exchange.envelope.model import Envelope, Kind, ServiceRef
from exchange.ledger import EventName
from exchange.node import IncomingRequest, Node, Notice
from exchange.node.store.base import PRUNED, InboxState, OutboxState
from exchange.signing import digest, seal, unseal
from exchange.signing.stored import decode_stored
from exchange.signing.xmldsig.signer import sign_xml
from exchange.testing import ThrowawayPKI, make_envelope
from exchange.transport.names import BusNames
from tests.bus.conftest import FAST, MakeNode
from tests.bus.helpers import RawBus, audit_events, eventually, store_as_sent, wait_event

pytestmark = pytest.mark.rabbit

# Small enough that a "huge" envelope is cheap to make, large enough for every normal one.
SMALL = replace(FAST, max_envelope_bytes=16 * 1024)

TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": "2"}],
}


@pytest.fixture
async def raw_bus(settings: Settings) -> AsyncIterator[RawBus]:
    """A plain aio-pika client on this session's bus exchange."""
    client = await RawBus.connect(BusNames(settings.bus_prefix).bus)
    yield client
    await client.close()


@pytest.fixture
def names(settings: Settings) -> BusNames:
    """This session's broker names."""
    return BusNames(settings.bus_prefix)


async def provider_counting(make_node: MakeNode, config: Any = SMALL) -> tuple[Node, list[str]]:
    """Start improvement with a tree-felling handler that records every call and grants."""
    provider = await make_node("improvement", config)
    calls: list[str] = []

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        calls.append(request.message_id)
        return {"decision": "granted", "permit_number": "TF-7"}

    return provider, calls


async def assert_still_serves(sender: Node, calls: list[str]) -> None:
    """A normal request afterwards is answered, and is the only one the handler ever saw."""
    request_id = await sender.request("tree-felling-permit", TREES, case_id="KZN-OK")
    answer = await sender.wait_answer(request_id, timeout=10)
    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload == {"decision": "granted", "permit_number": "TF-7"}
    assert calls == [request_id]


def now_envelope(**fields: Any) -> Envelope:
    """A valid tree-felling request from single-center to improvement, created now."""
    return make_envelope(clock=SystemClock(), **fields)


# --- unattributable: quarantine, never a fault ------------------------------------------


def unsigned(pki: ThrowawayPKI, tmp_path: Path) -> bytes:
    """An envelope without any signature."""
    return serialize(encode_xml(now_envelope()))


def forged(pki: ThrowawayPKI, tmp_path: Path) -> bytes:
    """A validly signed envelope whose payload was changed afterwards."""
    raw = seal(now_envelope(), pki.credentials("single-center"))
    tampered = raw.replace(b"Kremlyovskaya 1<", b"Kremlyovskaya 9<")
    assert tampered != raw
    return tampered


def foreign_certificate(pki: ThrowawayPKI, tmp_path: Path) -> bytes:
    """Improvement's key and certificate on an envelope that claims single-center sent it."""
    return sign_xml(now_envelope(sender="single-center"), pki.credentials("improvement"))


def malformed_xml(pki: ThrowawayPKI, tmp_path: Path) -> bytes:
    """Bytes that are not well-formed XML."""
    return b'<envelope xmlns="urn:kazan:exchange:envelope:1"><messageId>x</message'


def malformed_json(pki: ThrowawayPKI, tmp_path: Path) -> bytes:
    """Bytes that are neither XML nor JSON."""
    return b"{not json \x00\xff"


def huge(pki: ThrowawayPKI, tmp_path: Path) -> bytes:
    """A validly signed envelope larger than the provider's size limit."""
    payload = {**TREES, "reason": "x" * (SMALL.max_envelope_bytes + 1)}
    raw = seal(now_envelope(payload=payload), pki.credentials("single-center"))
    assert len(raw) > SMALL.max_envelope_bytes
    return raw


def other_ca(pki: ThrowawayPKI, tmp_path: Path) -> bytes:
    """An envelope signed with a single-center certificate from a CA we do not trust."""
    stranger = ThrowawayPKI.create(tmp_path / "other-ca", ("single-center",), SYSTEM_CLOCK)
    return seal(now_envelope(), stranger.credentials("single-center"))


def from_collector(pki: ThrowawayPKI, tmp_path: Path) -> bytes:
    """A request the collector signed: a valid signature, but no party's."""
    return seal(now_envelope(sender="collector"), pki.issue("collector"))


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (unsigned, "signature-invalid"),
        (from_collector, "not-a-party"),
        (forged, "signature-invalid"),
        (foreign_certificate, "sender-mismatch"),
        (malformed_xml, "malformed"),
        (malformed_json, "malformed"),
        (huge, "too-large"),
        (other_ca, "certificate-unknown"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
async def test_unverifiable_delivery_is_quarantined(
    make_node: MakeNode,
    live_pki: ThrowawayPKI,
    raw_bus: RawBus,
    names: BusNames,
    tmp_path: Path,
    build: Callable[[ThrowawayPKI, Path], bytes],
    code: str,
) -> None:
    """What cannot be attributed is quarantined raw and audited, never faulted or handled."""
    provider, calls = await provider_counting(make_node)
    sender = await make_node("single-center")
    raw = build(live_pki, tmp_path)

    await raw_bus.publish("improvement", raw)
    event = await wait_event(provider, "quarantined")

    assert event.detail["code"] == code
    assert event.digest == hashlib.sha256(raw).hexdigest()
    assert event.detail["size"] == len(raw)
    quarantined = [m for m in await raw_bus.take_all(names.quarantine) if m.body == raw]
    assert len(quarantined) == 1
    assert quarantined[0].type == f"quarantined:improvement:{code}"
    provider_events = [e.event for e in await audit_events(provider)]
    assert "fault-sent" not in provider_events
    assert "rejected" not in provider_events
    assert calls == []
    await assert_still_serves(sender, calls)
    assert [e.event for e in await audit_events(sender)].count(EventName.FAULT_RECEIVED) == 0


# --- attributable but refused: a signed fault to the sender ------------------------------


def expired(now: Any) -> dict[str, Any]:
    """Validly signed, but its expiry has passed."""
    return {"created_at": now - timedelta(hours=2), "expires_at": now - timedelta(hours=1)}


def from_land_property(now: Any) -> dict[str, Any]:
    """Land-property may not call tree-felling-permit."""
    return {"sender": "land-property"}


def invalid_content(now: Any) -> dict[str, Any]:
    """A tree count of zero breaks the service schema."""
    return {"payload": {**TREES, "trees": [{"species": "oak", "count": "0"}]}}


def unknown_service(now: Any) -> dict[str, Any]:
    """No such service in the catalog."""
    return {"service": ServiceRef(code="no-such-service", version="1")}


@pytest.mark.parametrize(
    ("fields", "code", "mentions"),
    [
        (expired, "expired", "expired at"),
        (from_land_property, "access-denied", "land-property"),
        (invalid_content, "invalid-content", "/request/trees/count"),
        (unknown_service, "unknown-service", "no-such-service"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_refused_request_gets_a_signed_fault(
    make_node: MakeNode,
    live_pki: ThrowawayPKI,
    raw_bus: RawBus,
    fields: Callable[[Any], dict[str, Any]],
    code: str,
    mentions: str,
) -> None:
    """A verified request the provider refuses is audited as rejected and faulted to its sender."""
    provider, calls = await provider_counting(make_node)
    front_office = await make_node("single-center")
    envelope = now_envelope(**fields(SystemClock().now()))
    sender = front_office
    if envelope.sender != "single-center":
        sender = await make_node(envelope.sender)
    seen: list[Notice] = []
    sender.on_notice(seen.append)
    raw = seal(envelope, live_pki.credentials(envelope.sender))
    await store_as_sent(sender, envelope, raw)

    await raw_bus.publish("improvement", raw)
    answer = await sender.wait_answer(envelope.message_id, timeout=10)

    assert answer.kind == "fault"
    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == code
    assert mentions in answer.envelope.fault.text
    assert answer.envelope.sender == "improvement"
    assert answer.envelope.request_digest == digest(raw)
    assert [n.kind for n in seen] == ["fault"]
    sent = await sender.ctx.store.get_outbox(envelope.message_id)
    assert sent is not None
    assert sent.state is OutboxState.ANSWERED
    rejected = await wait_event(provider, "rejected", envelope.message_id)
    assert rejected.detail["code"] == code
    received = await provider.ctx.store.get_inbox(envelope.message_id)
    assert received is not None
    assert received.state is InboxState.REJECTED
    assert calls == []
    await assert_still_serves(front_office, calls)


async def test_request_for_another_party_is_refused_and_the_fault_is_not_taken_as_an_answer(
    make_node: MakeNode, live_pki: ThrowawayPKI, raw_bus: RawBus
) -> None:
    """A request for land-property put in improvement's inbox gets wrong-recipient back.

    The sender addressed land-property, so a fault from improvement does not close its request
    (an attacker can re-publish a captured request into any inbox): the sender logs it, ignored.
    """
    provider, calls = await provider_counting(make_node)
    sender = await make_node("single-center")
    seen: list[Notice] = []
    sender.on_notice(seen.append)
    envelope = now_envelope(recipient="land-property")
    raw = seal(envelope, live_pki.credentials("single-center"))
    await store_as_sent(sender, envelope, raw)

    await raw_bus.publish("improvement", raw)
    rejected = await wait_event(provider, "rejected", envelope.message_id)

    assert rejected.detail["code"] == "wrong-recipient"
    faults = await provider.ctx.store.outbox_answering(envelope.message_id)
    assert [f.kind for f in faults] == [Kind.FAULT.value]
    fault = decode_stored(faults[0].wire)
    assert fault.fault is not None
    assert fault.fault.code == "wrong-recipient"
    assert fault.recipient == "single-center"
    assert fault.request_digest == digest(raw)

    async def ignored_by_sender() -> bool:
        return any(
            e.message_id == fault.message_id and e.correlation_id == envelope.message_id
            for e in await audit_events(sender, "ignored")
        )

    await eventually(ignored_by_sender, 10, "the sender to log the fault")
    sent = await sender.ctx.store.get_outbox(envelope.message_id)
    assert sent is not None
    assert sent.state is OutboxState.SENT
    assert seen == []
    assert calls == []
    await assert_still_serves(sender, calls)


async def test_replayed_request_is_a_duplicate(
    make_node: MakeNode, live_pki: ThrowawayPKI, raw_bus: RawBus, names: BusNames
) -> None:
    """The same signed request twice runs the handler once and sends the same receipt again."""
    provider, calls = await provider_counting(make_node)
    await raw_bus.take_all(names.inbox("single-center"))  # leftovers of earlier tests
    envelope = now_envelope()
    raw = seal(envelope, live_pki.credentials("single-center"))

    await raw_bus.publish("improvement", raw)
    await wait_event(provider, "received", envelope.message_id)
    await raw_bus.publish("improvement", raw)
    duplicate = await wait_event(provider, "duplicate", envelope.message_id)

    assert duplicate.digest == digest(raw)

    def receipts_of(messages: list[Any]) -> list[Envelope]:
        return receipts_for(envelope.message_id, messages, live_pki)

    messages = await raw_bus.take_until(
        names.inbox("single-center"), lambda taken: len(receipts_of(taken)) >= 2
    )
    receipts = receipts_of(messages)
    assert len(receipts) == 2
    assert receipts[0].message_id == receipts[1].message_id
    assert receipts[0].request_digest == digest(raw)
    received = await provider.ctx.store.get_inbox(envelope.message_id)
    assert received is not None
    assert received.receipt_wire is not None
    assert unseal(received.receipt_wire, live_pki.trust()).envelope == receipts[0]
    await eventually(
        lambda: _inbox_state(provider, envelope.message_id, InboxState.ANSWERED),
        10,
        "the replayed request to be answered",
    )
    assert calls == [envelope.message_id]
    assert [e.event for e in await audit_events(provider)].count(EventName.RECEIVED) == 1
    sender = await make_node("single-center")
    calls.clear()
    await assert_still_serves(sender, calls)


async def test_replay_after_pruning_gets_the_same_receipt(
    make_node: MakeNode, live_pki: ThrowawayPKI, raw_bus: RawBus, names: BusNames
) -> None:
    """A metadata-only provider prunes its answers; a replayed request still gets its receipt."""
    metadata_only = replace(SMALL, metadata_only=True, prune_interval=0.05)
    provider, calls = await provider_counting(make_node, metadata_only)
    inbox = names.inbox("single-center")
    await raw_bus.take_all(inbox)  # leftovers of earlier tests
    envelope = now_envelope()
    raw = seal(envelope, live_pki.credentials("single-center"))

    def receipts_of(messages: list[Any]) -> list[Envelope]:
        return receipts_for(envelope.message_id, messages, live_pki)

    await raw_bus.publish("improvement", raw)
    (receipt,) = receipts_of(await raw_bus.take_until(inbox, lambda m: bool(receipts_of(m))))

    async def receipt_pruned() -> bool:
        record = await provider.ctx.store.get_outbox(receipt.message_id)
        return record is not None and record.wire == PRUNED

    await eventually(receipt_pruned, 10, "the provider to prune its receipt")
    await raw_bus.publish("improvement", raw)
    await wait_event(provider, "duplicate", envelope.message_id)

    again = receipts_of(await raw_bus.take_until(inbox, lambda m: bool(receipts_of(m))))
    assert again == [receipt]
    assert calls == [envelope.message_id]


def receipts_for(request_id: str, messages: list[Any], pki: ThrowawayPKI) -> list[Envelope]:
    """The verified receipts among ``messages`` that answer ``request_id``."""
    answers = [unseal(m.body, pki.trust()).envelope for m in messages]
    return [a for a in answers if a.kind is Kind.RECEIPT and a.correlation_id == request_id]


async def _inbox_state(node: Node, message_id: str, state: InboxState) -> bool:
    record = await node.ctx.store.get_inbox(message_id)
    return record is not None and record.state is state
