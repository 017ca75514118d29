"""Run by the crash test: commits one transaction, then dies between its business write and
its audit append (SIGKILL from inside the store's commit)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from exchange._clock import SystemClock
from exchange.ledger import chain
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.store import OutboxRecord, PostgresStore, SQLiteStore, Store


def _outbox(message_id: str, clock: SystemClock) -> OutboxRecord:
    now = clock.now()
    return OutboxRecord(
        message_id=message_id,
        kind="request",
        recipient="architecture",
        service="signage-project",
        correlation_id=None,
        case_id=None,
        wire=b"<envelope/>",
        digest="0" * 64,
        created_at=now,
        expires_at=now + timedelta(days=1),
    )


def _die(*args: Any, **kwargs: Any) -> Any:
    # Called by the store only after it wrote the outbox row in the open transaction.
    print("at-kill-point", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


async def _main(backend: str, where: str, party: str) -> None:
    clock = SystemClock()
    store: Store
    if backend == "sqlite":
        store = SQLiteStore(Path(where), party, clock)
    else:
        dsn, schema = where.rsplit("#", 1)
        store = PostgresStore(dsn, party, clock, schema=schema)
    await store.open()
    async with store.transaction() as tx:
        tx.add_outbox(_outbox("kept", clock))
        tx.audit(AuditEvent(EventName.CREATED, message_id="kept"))
    print("committed", flush=True)
    chain.Linker.hash = _die  # type: ignore[method-assign]
    async with store.transaction() as tx:
        tx.add_outbox(_outbox("lost", clock))
        tx.audit(AuditEvent(EventName.CREATED, message_id="lost"))
    print("survived", flush=True)  # never reached


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], sys.argv[3]))
