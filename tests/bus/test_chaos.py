"""Nothing lost, nothing answered twice: 1,000 requests through a node kill and a broker restart."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.config import Settings
from exchange.ledger import verify_chain
from exchange.node import Node
from exchange.node.store.base import InboxState, OutboxState, Store
from exchange.node.store.sqlite import SQLiteStore
from exchange.signing import WireFormat
from tests.bus.conftest import MakeNode
from tests.bus.processes import ExchangeProcess, exchange_env

pytestmark = [pytest.mark.rabbit, pytest.mark.slow, pytest.mark.chaos]

REQUESTS = 1000
WINDOW = 32
PAYLOAD: dict[str, Any] = {
    "applicant": {"name": "Chaos Test"},
    "address": "Kazan",
    "trees": [{"species": "oak", "count": 1}],
}


class ProviderProcess(ExchangeProcess):
    """``exchange node run improvement`` with the chaos handlers, as its own process."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            ["node", "run", "improvement", "--handlers", "tests.bus.chaos_handlers:register"],
            ready=b"ready improvement",
        )
        self.env = exchange_env(settings)

    async def start(self, env: dict[str, str] | None = None) -> None:
        """Start the provider and wait until it consumes."""
        await super().start(env or self.env)


@pytest.fixture
async def provider(settings: Settings) -> AsyncIterator[ProviderProcess]:
    """The provider as a separate process (stopped after the test)."""
    process = ProviderProcess(settings)
    yield process
    process.terminate()


async def _send_all(sender: Node, count: int) -> list[str]:
    window = asyncio.Semaphore(WINDOW)

    async def one() -> str:
        async with window:
            return await sender.request("tree-felling-permit", PAYLOAD, wire_format=WireFormat.JSON)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _answered(store: Store, ids: list[str]) -> int:
    count = 0
    for request_id in ids:
        record = await store.get_outbox(request_id)
        if record is not None and record.state is OutboxState.ANSWERED:
            count += 1
    return count


async def _sent_ids(sender: Node) -> list[str]:
    return [
        r.event.message_id or ""
        for r in await sender.ctx.store.audit(limit=10**6)
        if r.event.event == "created"
    ]


async def _wait_all_answered(sender: Node, ids: list[str], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while (done := await _answered(sender.ctx.store, ids)) < len(ids):
        assert asyncio.get_running_loop().time() < deadline, f"only {done}/{len(ids)} answered"
        await asyncio.sleep(0.5)


async def _stream_until_a_quarter_answered(
    make_node: MakeNode, provider: ProviderProcess
) -> tuple[Node, asyncio.Task[list[str]]]:
    """Start the provider and a sender streaming REQUESTS; return once a quarter is answered."""
    await provider.start()
    sender = await make_node("single-center")
    sending = asyncio.create_task(_send_all(sender, REQUESTS))
    while (
        len(
            [
                r
                for r in await sender.ctx.store.audit(limit=10**6)
                if r.event.event == "response-received"
            ]
        )
        < REQUESTS // 4
    ):
        await asyncio.sleep(0.05)
    return sender, sending


async def _check_once_each(sender: Node, settings: Settings, ids: list[str]) -> None:
    """Every request has exactly one response at the sender, and was received once."""
    provider_store = SQLiteStore(settings.store_dir / "improvement.db", "improvement", SYSTEM_CLOCK)
    await provider_store.open()
    try:
        await _check_answers(sender, provider_store, ids)
    finally:
        await provider_store.close()


async def _check_answers(sender: Node, provider_store: Store, ids: list[str]) -> None:
    """The counts behind ``_check_once_each``, against the provider's (stopped) store."""
    for request_id in ids:
        answers = {
            r.message_id
            for r in await sender.ctx.store.inbox_for(request_id)
            if r.kind == "response"
        }
        assert len(answers) == 1, (request_id, answers)
        received = await provider_store.get_inbox(request_id)
        assert received is not None
        assert received.state is InboxState.ANSWERED
        responses = [
            r for r in await provider_store.outbox_answering(request_id) if r.kind == "response"
        ]
        assert len(responses) == 1, (request_id, len(responses))
    verify_chain(await sender.ctx.store.audit(limit=10**6))
    verify_chain(await provider_store.audit(limit=10**6))


async def test_receiving_node_killed_mid_stream(
    make_node: MakeNode, settings: Settings, provider: ProviderProcess
) -> None:
    """SIGKILL of the provider mid-stream and a restart: all 1,000 answered exactly once."""
    sender, sending = await _stream_until_a_quarter_answered(make_node, provider)
    provider.kill()
    killed_at = await _answered(sender.ctx.store, await _sent_ids(sender))
    await provider.start()
    ids = await sending
    assert killed_at < REQUESTS, "the kill came too late to test anything"
    await _wait_all_answered(sender, ids, 180)
    provider.terminate()
    await _check_once_each(sender, settings, ids)


@pytest.fixture
def broker_control() -> Iterator[None]:
    """Make sure the broker runs again after the test, whatever happened."""
    yield
    subprocess.run(["rabbitmqctl", "start_app"], check=False, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "await_startup"], check=False, capture_output=True, timeout=120)


async def test_broker_stopped_and_started_mid_stream(
    make_node: MakeNode, settings: Settings, provider: ProviderProcess, broker_control: None
) -> None:
    """The broker stops and starts mid-stream: all 1,000 answered exactly once."""
    sender, sending = await _stream_until_a_quarter_answered(make_node, provider)
    await asyncio.to_thread(
        subprocess.run, ["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120
    )
    await asyncio.sleep(2.0)
    await asyncio.to_thread(
        subprocess.run, ["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120
    )
    ids = await sending
    await _wait_all_answered(sender, ids, 240)
    provider.terminate()
    await _check_once_each(sender, settings, ids)
