"""Nothing lost, nothing answered twice: 1,000 requests through a node kill and a broker restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.audit import verify_chain
from exchange.config import Settings
from exchange.node import Node
from exchange.node.store.base import InboxState, OutboxState, Store
from exchange.node.store.sqlite import SQLiteStore
from exchange.signing import WireFormat
from tests.bus.conftest import MakeNode

pytestmark = [pytest.mark.rabbit, pytest.mark.slow, pytest.mark.chaos]

REQUESTS = 1000
WINDOW = 32
PAYLOAD: dict[str, Any] = {
    "applicant": {"name": "Chaos Test"},
    "address": "Kazan",
    "trees": [{"species": "oak", "count": 1}],
}


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EXCHANGE_CERTS_DIR=str(settings.certs_dir),
        EXCHANGE_SCHEMAS_DIR=str(settings.schemas_dir),
        EXCHANGE_CATALOG=str(settings.catalog),
        EXCHANGE_AMQP_URL=settings.amqp_url,
        EXCHANGE_BUS_PREFIX=settings.bus_prefix,
        EXCHANGE_STORE_DIR=str(settings.store_dir),
    )
    return env


class ProviderProcess:
    """``exchange node run improvement`` in its own session, killed by its own pid."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Start the process and wait for its readiness line."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exchange.cli",
                "node",
                "run",
                "improvement",
                "--handlers",
                "tests.bus.chaos_handlers:register",
            ],
            env=_env(self.settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        assert line.strip() == b"ready improvement", line

    def kill(self) -> None:
        """SIGKILL: no chance to flush or ack anything."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self) -> None:
        """SIGTERM and wait: a clean stop."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(30)


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


async def _check_once_each(sender: Node, provider_store: Store, ids: list[str]) -> None:
    """Every request has exactly one response at the sender, and was received once."""
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
    provider.kill()
    killed_at = await _answered(sender.ctx.store, await _sent_ids(sender))
    await provider.start()
    ids = await sending
    assert killed_at < REQUESTS, "the kill came too late to test anything"
    await _wait_all_answered(sender, ids, 180)
    provider.terminate()
    store = SQLiteStore(settings.store_dir / "improvement.db", "improvement", SYSTEM_CLOCK)
    await store.open()
    try:
        await _check_once_each(sender, store, ids)
    finally:
        await store.close()


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
    store = SQLiteStore(settings.store_dir / "improvement.db", "improvement", SYSTEM_CLOCK)
    await store.open()
    try:
        await _check_once_each(sender, store, ids)
    finally:
        await store.close()
