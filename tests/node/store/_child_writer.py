"""Run by the SIGKILL test: commits transactions forever, printing each id once it returned."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from exchange._clock import SystemClock
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.store import OutboxRecord, SQLiteStore


async def _main(path: Path, party: str) -> None:
    clock = SystemClock()
    store = SQLiteStore(path, party, clock)
    await store.open()

    async def writer() -> None:
        while True:
            mid = str(uuid.uuid4())
            now = clock.now()
            async with store.transaction() as tx:
                tx.add_outbox(
                    OutboxRecord(
                        message_id=mid,
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
                )
                tx.audit(AuditEvent(EventName.CREATED, message_id=mid))
            print(mid, flush=True)

    await asyncio.gather(*(writer() for _ in range(8)))


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1]), sys.argv[2]))
