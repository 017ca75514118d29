"""Streams of requests to a provider in its own process, and the checks chaos tests share.

Nothing lost, nothing answered twice: every request sent has exactly one response at the
sender, was received once and answered once by the provider, and both chains verify.
"""

from __future__ import annotations

import asyncio
from typing import Any

from exchange._clock import SYSTEM_CLOCK
from exchange.config import Settings
from exchange.ledger import verify_chain
from exchange.node import Node
from exchange.node.store.base import InboxState, OutboxState, Store
from exchange.node.store.sqlite import SQLiteStore
from exchange.signing import WireFormat
from tests.bus.conftest import MakeNode
from tests.bus.processes import ExchangeProcess, exchange_env

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


async def send_all(sender: Node, count: int) -> list[str]:
    window = asyncio.Semaphore(WINDOW)

    async def one() -> str:
        async with window:
            return await sender.request("tree-felling-permit", PAYLOAD, wire_format=WireFormat.JSON)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def answered(store: Store, ids: list[str]) -> int:
    count = 0
    for request_id in ids:
        record = await store.get_outbox(request_id)
        if record is not None and record.state is OutboxState.ANSWERED:
            count += 1
    return count


async def sent_ids(sender: Node) -> list[str]:
    return [
        r.event.message_id or ""
        for r in await sender.ctx.store.audit(limit=10**6)
        if r.event.event == "created"
    ]


async def wait_all_answered(sender: Node, ids: list[str], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while (done := await answered(sender.ctx.store, ids)) < len(ids):
        assert asyncio.get_running_loop().time() < deadline, f"only {done}/{len(ids)} answered"
        await asyncio.sleep(0.5)


async def stream_until_a_quarter_answered(
    make_node: MakeNode, provider: ProviderProcess, requests: int
) -> tuple[Node, asyncio.Task[list[str]]]:
    """Start the provider and a sender streaming ``requests``; return once a quarter is answered."""
    await provider.start()
    sender = await make_node("single-center")
    sending = asyncio.create_task(send_all(sender, requests))
    while (
        len(
            [
                r
                for r in await sender.ctx.store.audit(limit=10**6)
                if r.event.event == "response-received"
            ]
        )
        < requests // 4
    ):
        await asyncio.sleep(0.05)
    return sender, sending


async def check_once_each(sender: Node, settings: Settings, ids: list[str]) -> None:
    """Every request has exactly one response at the sender, and was received once."""
    provider_store = SQLiteStore(settings.store_dir / "improvement.db", "improvement", SYSTEM_CLOCK)
    await provider_store.open()
    try:
        await check_answers(sender, provider_store, ids)
    finally:
        await provider_store.close()


async def check_answers(sender: Node, provider_store: Store, ids: list[str]) -> None:
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
