"""Two processes of one party on PostgreSQL share the work: every handler runs once.

Issue 13: without claims every request's handler ran in both processes. Here 1,000 requests
go to two ``exchange node run improvement`` processes sharing one PostgreSQL store; each
handler run is counted (``claims_handlers``). Then the same with one of them SIGKILLed
mid-stream: nothing lost or answered twice, and the only second runs are of requests the
dead process had claimed, given a higher attempt number.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.config import Settings
from exchange.node import Node
from exchange.node.factory import store_schema
from exchange.node.store.base import InboxState, OutboxState
from exchange.node.store.postgres import PostgresStore
from exchange.signing import WireFormat
from tests.bus.conftest import MakeNode
from tests.bus.processes import ExchangeProcess, exchange_env
from tests.postgres import DSN, drop_schemas

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres, pytest.mark.slow]

REQUESTS = 1000
WINDOW = 64
PAYLOAD: dict[str, Any] = {
    "applicant": {"name": "Claims Test"},
    "address": "Kazan",
    "trees": [{"species": "oak", "count": 1}],
}


class Party:
    """The provider's processes, its PostgreSQL schema and the table counting handler runs."""

    def __init__(self, settings: Settings) -> None:
        self.schema = store_schema(settings, "improvement")
        self.runs = f'"{self.schema}_runs".runs'
        env = exchange_env(
            settings,
            EXCHANGE_STORE_DSN=DSN,
            EXCHANGE_CLAIM_LEASE="2",
            CLAIMS_RUNS_TABLE=self.runs,
        )
        self.processes = [
            ExchangeProcess(
                ["node", "run", "improvement", "--handlers", "tests.bus.claims_handlers:register"],
                ready=b"ready improvement",
            )
            for _ in range(2)
        ]
        self.env = env

    async def prepare(self) -> None:
        """A fresh store schema and runs table."""
        await drop_schemas(self.schema)
        conn = await asyncpg.connect(DSN)
        try:
            await conn.execute(f'CREATE SCHEMA "{self.schema}_runs"')
            await conn.execute(f"CREATE TABLE {self.runs} (message_id text, attempt int, pid int)")
        finally:
            await conn.close()

    async def start(self) -> None:
        """Start both processes (each ready when it consumes)."""
        await asyncio.gather(*(p.start(self.env) for p in self.processes))

    def pid(self, index: int) -> int:
        process = self.processes[index].process
        assert process is not None
        return process.pid

    async def run_counts(self) -> dict[str, list[tuple[int, int]]]:
        """(attempt, pid) of every handler run, by request id."""
        conn = await asyncpg.connect(DSN)
        try:
            rows = await conn.fetch(f"SELECT message_id, attempt, pid FROM {self.runs}")  # noqa: S608
        finally:
            await conn.close()
        runs: dict[str, list[tuple[int, int]]] = {}
        for row in rows:
            runs.setdefault(row[0], []).append((row[1], row[2]))
        return runs


@pytest.fixture
async def party(settings: Settings) -> AsyncIterator[Party]:
    """Two provider processes on one PostgreSQL schema (stopped and dropped after the test)."""
    party = Party(settings)
    await party.prepare()
    yield party
    for process in party.processes:
        process.terminate()
    await drop_schemas(party.schema)


async def _send_all(sender: Node) -> list[str]:
    window = asyncio.Semaphore(WINDOW)

    async def one() -> str:
        async with window:
            return await sender.request("tree-felling-permit", PAYLOAD, wire_format=WireFormat.JSON)

    return list(await asyncio.gather(*(one() for _ in range(REQUESTS))))


async def _answered(sender: Node, ids: list[str]) -> int:
    count = 0
    for request_id in ids:
        record = await sender.ctx.store.get_outbox(request_id)
        if record is not None and record.state is OutboxState.ANSWERED:
            count += 1
    return count


async def _responses(sender: Node) -> int:
    records = await sender.ctx.store.audit(limit=10**6)
    return sum(1 for r in records if r.event.event == "response-received")


async def _wait_all_answered(sender: Node, ids: list[str], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while (done := await _answered(sender, ids)) < len(ids):
        assert asyncio.get_running_loop().time() < deadline, f"only {done}/{len(ids)} answered"
        await asyncio.sleep(0.5)


async def _check_answered_once(sender: Node, party: Party, ids: list[str]) -> None:
    """One response each at the sender; each request answered once in the provider's store."""
    store = PostgresStore(DSN, "improvement", SYSTEM_CLOCK, schema=party.schema)
    await store.open()
    try:
        for request_id in ids:
            answers = [
                r for r in await sender.ctx.store.inbox_for(request_id) if r.kind == "response"
            ]
            assert len(answers) == 1, (request_id, len(answers))
            received = await store.get_inbox(request_id)
            assert received is not None
            assert received.state is InboxState.ANSWERED
            sent = [r for r in await store.outbox_answering(request_id) if r.kind == "response"]
            assert len(sent) == 1, (request_id, len(sent))
    finally:
        await store.close()


async def test_two_processes_run_each_handler_once(make_node: MakeNode, party: Party) -> None:
    """1,000 requests, two processes of the provider: every handler ran exactly once, both
    processes did part of the work, and every run was attempt 1."""
    await party.start()
    sender = await make_node("single-center")
    ids = await _send_all(sender)
    await _wait_all_answered(sender, ids, 120)
    runs = await party.run_counts()
    assert sorted(runs) == sorted(ids)
    twice = {mid: r for mid, r in runs.items() if len(r) != 1}
    assert twice == {}
    assert {attempt for [(attempt, _)] in runs.values()} == {1}
    by_pid = {pid for [(_, pid)] in runs.values()}
    assert by_pid == {party.pid(0), party.pid(1)}  # shared, not one doing it all
    await _check_answered_once(sender, party, ids)


async def test_a_process_killed_mid_stream(make_node: MakeNode, party: Party) -> None:
    """One of two processes SIGKILLed mid-stream: every request answered exactly once; the
    only second runs are of requests the dead process had started, with attempt 2."""
    await party.start()
    sender = await make_node("single-center")
    sending = asyncio.create_task(_send_all(sender))
    while await _responses(sender) < REQUESTS // 4:
        await asyncio.sleep(0.05)
    dead = party.pid(0)
    party.processes[0].kill()
    ids = await sending
    assert await _answered(sender, ids) < REQUESTS, "the kill came too late to test anything"
    await _wait_all_answered(sender, ids, 120)
    runs = await party.run_counts()
    assert sorted(runs) == sorted(ids)  # nothing lost
    rerun = {mid: r for mid, r in runs.items() if len(r) > 1}
    for mid, attempts in rerun.items():
        first, *later = sorted(attempts)
        assert first == (1, dead), (mid, attempts)  # started by the process that died
        assert all(attempt > 1 and pid != dead for attempt, pid in later), (mid, attempts)
    # A run given attempt 2 alone: the dead process claimed it but died before its handler
    # counted the run; the survivor's takeover is the only run.
    alone = [r for r in runs.values() if len(r) == 1]
    assert all(attempt == 1 or pid != dead for [(attempt, pid)] in alone)
    taken_over = sum(1 for r in runs.values() if max(r)[0] > 1)
    print(f"killed mid-stream: {len(rerun)} re-run, {taken_over} taken over")
    await _check_answered_once(sender, party, ids)
