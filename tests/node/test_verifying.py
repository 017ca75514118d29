"""Verification off the event loop: a node keeps serving while one delivery is verified."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from exchange.config import Settings
from exchange.envelope.model import Envelope, Kind
from exchange.node import NodeConfig
from exchange.node.context import NodeContext
from exchange.node.store.base import OutboxState
from exchange.node.verifying import Verifier
from exchange.pki.trust import Signer
from exchange.signing import VerifiedEnvelope, WireFormat, seal
from exchange.testing import ThrowawayPKI
from exchange.transport.names import BusNames
from tests.bus.conftest import MakeNode
from tests.bus.helpers import RawBus, eventually, wait_event
from tests.bus.test_bad_traffic import TREES, now_envelope

# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, -1, 65])
def test_node_config_refuses_a_bad_worker_count(workers: int) -> None:
    """NodeConfig refuses a pool that cannot work or is absurd, naming the variable."""
    with pytest.raises(ValueError, match="EXCHANGE_VERIFY_WORKERS"):
        NodeConfig(verify_workers=workers)


def test_settings_read_and_validate_the_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """EXCHANGE_VERIFY_WORKERS is read (default 2) and validated."""
    assert Settings().verify_workers == 2
    monkeypatch.setenv("EXCHANGE_VERIFY_WORKERS", "3")
    assert Settings().verify_workers == 3
    monkeypatch.setenv("EXCHANGE_VERIFY_WORKERS", "0")
    with pytest.raises(ValidationError):
        Settings()


# --- order: answers keep delivery order, requests need not -------------------------------


def _verified(kind: Kind) -> VerifiedEnvelope:
    envelope = Envelope.model_construct(kind=kind)
    return VerifiedEnvelope(envelope, b"", "", WireFormat.JSON, cast(Signer, None))


class _Gated:
    """A check that blocks the delivery ``b"first"`` until released (in its worker thread)."""

    def __init__(self, kinds: dict[bytes, Kind]) -> None:
        self.kinds = kinds
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, raw: bytes) -> VerifiedEnvelope:
        if raw == b"first":
            self.started.set()
            assert self.release.wait(30)
        return _verified(self.kinds[raw])


@pytest.fixture
async def verifier() -> AsyncIterator[Verifier]:
    """A verifier of two workers on a stand-in context (only its party name is read)."""
    context = cast(NodeContext, SimpleNamespace(party="improvement"))
    made = Verifier(context, 2)
    yield made
    made.close()


async def test_an_answer_waits_for_earlier_deliveries(verifier: Verifier) -> None:
    """A response verified first still comes out after the status delivered before it."""
    gate = _Gated({b"first": Kind.STATUS, b"second": Kind.RESPONSE})
    verifier.check = gate
    done: list[str] = []

    async def run(raw: bytes) -> None:
        await verifier.verify(raw)
        done.append(raw.decode())

    first = asyncio.create_task(run(b"first"))
    await asyncio.to_thread(gate.started.wait, 10)
    second = asyncio.create_task(run(b"second"))
    await asyncio.sleep(0.2)  # room for the response to overtake, if it could
    assert done == []
    gate.release.set()
    await asyncio.gather(first, second)
    assert done == ["first", "second"]


async def test_a_request_does_not_wait(verifier: Verifier) -> None:
    """A request verified while an earlier delivery is still being verified goes ahead."""
    gate = _Gated({b"first": Kind.STATUS, b"second": Kind.REQUEST})
    verifier.check = gate
    first = asyncio.create_task(verifier.verify(b"first"))
    await asyncio.to_thread(gate.started.wait, 10)
    second = await verifier.verify(b"second")
    assert second.envelope.kind is Kind.REQUEST
    assert not first.done()
    gate.release.set()
    await first


async def test_verification_runs_in_the_nodes_own_workers(verifier: Verifier) -> None:
    """Not on the loop, nor in the loop's default pool: in the node's named workers."""
    threads: list[str] = []

    def check(raw: bytes) -> VerifiedEnvelope:
        threads.append(threading.current_thread().name)
        return _verified(Kind.REQUEST)

    verifier.check = check
    await asyncio.gather(*(verifier.verify(b"x") for _ in range(4)))
    assert all(name.startswith("improvement-verify") for name in threads), threads
    assert len(set(threads)) <= 2  # the configured number of workers


async def test_a_small_delivery_is_verified_on_the_loop() -> None:
    """Up to the inline size on the loop's thread; anything larger in the node's workers."""
    context = cast(NodeContext, SimpleNamespace(party="improvement"))
    verifier = Verifier(context, 2, inline_up_to=4)
    threads: dict[bytes, str] = {}

    def check(raw: bytes) -> VerifiedEnvelope:
        threads[raw] = threading.current_thread().name
        return _verified(Kind.REQUEST)

    verifier.check = check
    try:
        await verifier.verify(b"tiny")
        await verifier.verify(b"large")
    finally:
        verifier.close()
    assert threads[b"tiny"] == threading.current_thread().name
    assert threads[b"large"].startswith("improvement-verify")


async def test_an_answer_verified_on_the_loop_still_waits_for_elders() -> None:
    """A small response (on the loop) does not overtake a larger status still in a worker."""
    context = cast(NodeContext, SimpleNamespace(party="improvement"))
    verifier = Verifier(context, 2, inline_up_to=4)
    gate = _Gated({b"first": Kind.STATUS, b"2nd": Kind.RESPONSE})
    verifier.check = gate
    done: list[str] = []

    async def run(raw: bytes) -> None:
        await verifier.verify(raw)
        done.append(raw.decode())

    try:
        first = asyncio.create_task(run(b"first"))
        await asyncio.to_thread(gate.started.wait, 10)
        second = asyncio.create_task(run(b"2nd"))
        await asyncio.sleep(0.2)  # room for the response to overtake, if it could
        assert done == []
        gate.release.set()
        await asyncio.gather(first, second)
    finally:
        verifier.close()
    assert done == ["first", "2nd"]


async def test_a_failed_elder_does_not_hold_answers(verifier: Verifier) -> None:
    """An earlier delivery that fails verification releases the answers behind it."""

    def check(raw: bytes) -> VerifiedEnvelope:
        if raw == b"bad":
            raise RuntimeError("stands in for a refusal")
        return _verified(Kind.FAULT)

    verifier.check = check
    with pytest.raises(RuntimeError):
        await verifier.verify(b"bad")
    assert (await verifier.verify(b"good")).envelope.kind is Kind.FAULT


# --- a node receipts valid requests while it verifies a worst-case input ------------------


def worst_case(pki: ThrowawayPKI, limit: int) -> bytes:
    """The issue's shape: a root stuffed with unused namespace declarations, bad signature."""
    raw = seal(now_envelope(), pki.credentials("single-center"))
    raw = raw.replace(b"Kremlyovskaya 1<", b"Kremlyovskaya 9<")  # the signature fails last
    end = raw.index(b">", raw.index(b"<envelope"))
    declarations = bytearray()
    n = 0
    while len(raw) + len(declarations) < limit - 64:
        declarations += b' xmlns:p%d="urn:p%d"' % (n, n)
        n += 1
    return raw[:end] + bytes(declarations) + raw[end:]


@pytest.mark.rabbit
async def test_node_receipts_while_verifying_a_worst_case_input(
    make_node: MakeNode, live_pki: ThrowawayPKI, settings: Settings
) -> None:
    """Valid requests are received and receipted while a hostile verification is under way.

    The hostile delivery's verification is held (in its worker thread) until the receipts of
    the valid requests arrived at their sender: they cannot have waited for it.
    """
    provider = await make_node("improvement")
    sender = await make_node("single-center")

    @provider.handler("tree-felling-permit")
    async def grant(request: Any) -> dict[str, Any]:
        return {"decision": "granted", "permit_number": "TF-7"}

    hostile = worst_case(live_pki, provider.ctx.config.max_envelope_bytes)
    real_check = provider.inbound.verifier.check
    started, release = threading.Event(), threading.Event()
    finished: list[bytes] = []

    def held(raw: bytes) -> VerifiedEnvelope:
        if raw == hostile:
            started.set()
            assert release.wait(30)
        try:
            return real_check(raw)
        finally:
            finished.append(raw)

    provider.inbound.verifier.check = held
    raw_bus = await RawBus.connect(BusNames(settings.bus_prefix).bus)
    try:
        await raw_bus.publish("improvement", hostile)
        assert await asyncio.to_thread(started.wait, 10)

        ids = [await sender.request("tree-felling-permit", TREES, case_id="KZN-OK") for _ in "abc"]

        async def receipted() -> bool:
            records = [await sender.ctx.store.get_outbox(i) for i in ids]
            return all(
                r is not None and r.state is not OutboxState.PENDING for r in records
            ) and all(
                r is not None and r.state in (OutboxState.RECEIPTED, OutboxState.ANSWERED)
                for r in records
            )

        await eventually(receipted, 20, "receipts of the valid requests")
        assert hostile not in finished  # still held: the receipts did not wait for it
    finally:
        release.set()
        await raw_bus.close()
    event = await wait_event(provider, "quarantined", timeout=60)
    assert event.digest == hashlib.sha256(hostile).hexdigest()
    assert hostile in finished
