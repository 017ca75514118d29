"""The SQLite store against the contract, plus group commit, disk full and a killed writer."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import structlog.testing

from exchange._clock import FrozenClock
from exchange.exceptions import StoreUnavailable
from exchange.ledger import verify_chain
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.store import SQLiteStore, _rows, _sqlite_sql, _sqlite_writer

from .claim_contract import ClaimContract
from .contract import PARTY, StoreContract, StoreFactory, inbox, outbox

CHILD = Path(__file__).with_name("_child_writer.py")


class TestSQLiteStore(StoreContract, ClaimContract):
    """Every contract test, against a fresh SQLite file."""

    @pytest.fixture
    def make_store(self, tmp_path: Path, clock: FrozenClock) -> StoreFactory:
        """SQLite stores on this test's file."""

        def make(party: str = PARTY) -> SQLiteStore:
            return SQLiteStore(tmp_path / "party.db", party, clock)

        return make


async def test_open_reports_an_unusable_path(tmp_path: Path, clock: FrozenClock) -> None:
    """A path SQLite cannot open raises StoreUnavailable naming the path."""
    (tmp_path / "party.db").mkdir()
    store = SQLiteStore(tmp_path / "party.db", PARTY, clock)
    with pytest.raises(StoreUnavailable, match=r"party\.db"):
        await store.open()


@pytest.fixture
def tiny_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writer connections whose database may not grow past 40 pages: a full disk."""
    connect = _sqlite_sql.connect

    def small(path: Path, busy_timeout: float) -> sqlite3.Connection:
        conn = connect(path, busy_timeout)
        conn.execute("PRAGMA max_page_count = 40")
        return conn

    monkeypatch.setattr(_sqlite_sql, "connect", small)


@pytest.mark.usefixtures("tiny_disk")
async def test_disk_full(tmp_path: Path, clock: FrozenClock) -> None:
    """A full disk raises StoreUnavailable with a hint; smaller writes still go through after."""
    store = SQLiteStore(tmp_path / "party.db", PARTY, clock)
    await store.open()
    try:
        big = outbox(clock.now())

        async def create_big() -> None:
            async with store.transaction() as tx:
                tx.add_outbox(replace(big, wire=b"x" * 400_000))
                tx.audit(AuditEvent(EventName.CREATED, message_id=big.message_id))

        with pytest.raises(StoreUnavailable, match="disk full — free space"):
            await create_big()
        small = outbox(clock.now())
        async with store.transaction() as tx:
            tx.add_outbox(small)
            tx.audit(AuditEvent(EventName.CREATED, message_id=small.message_id))
        assert await store.get_outbox(big.message_id) is None
        assert await store.get_outbox(small.message_id) == small
        assert [r.seq for r in await store.audit()] == [1]
    finally:
        await store.close()


async def test_locked_database_waits_without_blocking_the_loop(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A write lock held by another connection delays the commit, not the event loop."""
    store = SQLiteStore(tmp_path / "party.db", PARTY, clock)
    await store.open()
    other = sqlite3.connect(tmp_path / "party.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # e.g. `exchange dlq replay` in another process
        record = outbox(clock.now())

        async def create() -> None:
            async with store.transaction() as tx:
                tx.add_outbox(record)
                tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))

        commit = asyncio.create_task(create())
        ticks = 0
        for _ in range(10):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 10
        assert not commit.done()
        other.execute("COMMIT")
        await asyncio.wait_for(commit, 5)
        assert await store.get_outbox(record.message_id) == record
    finally:
        other.close()
        await store.close()


async def test_locked_database_past_busy_timeout(tmp_path: Path, clock: FrozenClock) -> None:
    """A lock held past the busy timeout fails the transaction with a hint; later ones commit."""
    store = SQLiteStore(tmp_path / "party.db", PARTY, clock, busy_timeout=0.1)
    await store.open()
    other = sqlite3.connect(tmp_path / "party.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="another process holds the database"):
            async with store.transaction() as tx:
                tx.add_outbox(outbox(clock.now()))
        other.execute("COMMIT")
        record = outbox(clock.now())
        async with store.transaction() as tx:
            tx.add_outbox(record)
        assert await store.get_outbox(record.message_id) == record
    finally:
        other.close()
        await store.close()


async def test_wal_is_checkpointed_and_starts_over(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steady writes keep the WAL small: checkpoints catch up and it starts over."""
    monkeypatch.setattr(_sqlite_writer, "_CHECKPOINT_ROWS", 20)
    store = SQLiteStore(tmp_path / "party.db", PARTY, clock)
    await store.open()
    try:
        for _ in range(600):  # a WAL of some 20 MB if it never started over
            record = outbox(clock.now())
            async with store.transaction() as tx:
                tx.add_outbox(record)
                tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))
        assert (tmp_path / "party.db-wal").stat().st_size < 5_000_000
        assert len(await store.audit(limit=1000)) == 600
    finally:
        await store.close()


async def test_close_lets_a_checkpoint_under_way_finish(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing right after the write that starts a checkpoint: it completes, no warning."""
    monkeypatch.setattr(_sqlite_writer, "_CHECKPOINT_ROWS", 2)
    store = SQLiteStore(tmp_path / "party.db", PARTY, clock)
    await store.open()
    record = outbox(clock.now())
    async with store.transaction() as tx:  # 2 rows: the outbox row and its audit record
        tx.add_outbox(record)
        tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))
    with structlog.testing.capture_logs() as logs:
        await store.close()
    assert [entry for entry in logs if entry["event"] == "store.checkpoint_failed"] == []


@pytest.mark.chaos
async def test_sigkill_loses_nothing_committed(tmp_path: Path, clock: FrozenClock) -> None:
    """Every transaction a killed process saw return is in the store, and the chain verifies."""
    path = tmp_path / "party.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(path),
        PARTY,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    printed: list[str] = []
    try:
        while len(printed) < 300:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
            assert line.endswith(b"\n"), "the writer stopped before it was killed"
            printed.append(line.decode().strip())
        os.kill(proc.pid, signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
        rest = (await proc.stdout.read()).decode()
        printed += [line for line in rest.split("\n")[:-1] if line]
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()

    store = SQLiteStore(path, PARTY, clock)
    await store.open()
    try:
        missing = [mid for mid in printed if await store.get_outbox(mid) is None]
        assert missing == []
        records = await store.audit(limit=1_000_000)
        assert set(printed) <= {r.event.message_id for r in records}
        verify_chain(records)
    finally:
        await store.close()


async def test_commits_are_durable_and_fsync_off_the_loop(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer commits with synchronous=FULL, and never runs a COMMIT on the loop's thread."""
    connections: list[sqlite3.Connection] = []
    commits: list[str] = []
    connect = _sqlite_sql.connect

    def traced(path: Path, busy_timeout: float) -> sqlite3.Connection:
        conn = connect(path, busy_timeout)
        connections.append(conn)
        conn.set_trace_callback(
            lambda sql: commits.append(threading.current_thread().name) if sql == "COMMIT" else None
        )
        return conn

    monkeypatch.setattr(_sqlite_sql, "connect", traced)
    store = SQLiteStore(tmp_path / "party.db", PARTY, clock)
    await store.open()
    try:
        (writer,) = connections
        assert writer.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        for n in range(3):
            async with store.transaction() as tx:
                tx.audit(AuditEvent(EventName.CREATED, message_id=f"m{n}"))
        assert len(await store.audit()) == 3
    finally:
        await store.close()
    loop_thread = threading.current_thread().name
    assert commits
    assert loop_thread not in commits


async def test_a_version_1_store_is_migrated(tmp_path: Path, clock: FrozenClock) -> None:
    """A store made before claims gains the claim columns and schema version 2 on open, its
    requests kept and claimable."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(_sqlite_sql._SCHEMA)  # version 1's tables: the claim columns are added
    record = inbox(clock.now())
    columns = ", ".join(_rows.INBOX_COLUMNS)
    marks = ", ".join("?" * len(_rows.INBOX_COLUMNS))
    conn.execute(
        f"INSERT INTO inbox ({columns}) VALUES ({marks})",  # noqa: S608
        _rows.inbox_values(record, _sqlite_sql.to_text),
    )
    conn.close()
    store = SQLiteStore(path, PARTY, clock)
    await store.open()
    try:
        assert await store.get_meta("schema_version") == "2"
        (claimed,) = await store.claim_inbox("p1", clock.now(), timedelta(seconds=30))
        assert claimed.message_id == record.message_id
    finally:
        await store.close()
