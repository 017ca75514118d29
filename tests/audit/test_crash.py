"""A crash between the business change and its audit append leaves neither (one transaction).

A child process commits one transaction, then is SIGKILLed from inside the store's commit
of the next one: after its outbox row was written, before its audit record was. Reopened,
the store holds the first transaction whole and nothing of the second.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path

import pytest

from exchange._clock import SystemClock
from exchange.ledger import verify_chain
from exchange.node.store import PostgresStore, SQLiteStore, Store
from tests.postgres import DSN

CHILD = Path(__file__).with_name("_crash_child.py")
PARTY = "improvement"


async def _run_child(backend: str, where: str) -> list[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        backend,
        where,
        PARTY,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
        cwd=str(CHILD.parent.parent.parent),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return out.decode().split()


async def _check(store: Store) -> None:
    await store.open()
    try:
        assert await store.get_outbox("kept") is not None
        assert await store.get_outbox("lost") is None
        records = await store.audit()
        assert [r.event.message_id for r in records] == ["kept"]
        verify_chain(records)
    finally:
        await store.close()


async def test_sqlite_kill_between_business_write_and_audit(tmp_path: Path) -> None:
    """SQLite: the killed commit leaves no outbox row without its audit record."""
    path = tmp_path / "party.db"
    assert await _run_child("sqlite", str(path)) == ["committed", "at-kill-point"]
    await _check(SQLiteStore(path, PARTY, SystemClock()))


@pytest.mark.postgres
async def test_postgres_kill_between_business_write_and_audit(pg_prefix: str) -> None:
    """PostgreSQL: the killed commit leaves no outbox row without its audit record."""
    schema = f"{pg_prefix}_{uuid.uuid4().hex[:6]}"
    assert await _run_child("postgres", f"{DSN}#{schema}") == ["committed", "at-kill-point"]
    await _check(PostgresStore(DSN, PARTY, SystemClock(), schema=schema))
