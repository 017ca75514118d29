"""The PostgreSQL store's group commit: transactions queued meanwhile share one commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from exchange._clock import Clock
from exchange.node.store import _postgres_sql as sql
from exchange.node.store._buffer import TransactionBuffer

if TYPE_CHECKING:
    import asyncpg

GROUP = 64  # transactions per group commit at most

Pending = tuple[TransactionBuffer, asyncio.Future[None]]


def _settle(group: Sequence[Pending], error: Exception | None) -> None:
    for _, future in group:
        if future.done():  # the caller was cancelled; the outcome stays in the store
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class GroupWriter:
    """Writes queued transactions, a group at a time, each group in one transaction.

    If a group fails (a state conflict, a duplicate, a lost lease, a deadlock with another
    process), it is rolled back and each transaction is written on its own, so that only
    the failing ones fail.
    """

    def __init__(
        self,
        statements: sql.Statements,
        party: str,
        clock: Clock,
        pool: Callable[[], asyncpg.Pool],
        error: Callable[[Exception], Exception],
    ) -> None:
        self._sql = statements
        self._party = party
        self._clock = clock
        self._pool = pool
        self._error = error
        self._queue: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(self, buffer: TransactionBuffer) -> asyncio.Future[None]:
        """Queue ``buffer``; the future is done when it is committed (or has failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((buffer, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return future

    async def write(self, conn: asyncpg.Connection, *buffers: TransactionBuffer) -> None:
        """Write ``buffers`` in ``conn``'s open transaction (their audit events chained)."""
        await sql.apply(conn, self._sql, self._party, self._clock, *buffers)

    async def close(self) -> None:
        """Wait for the running and queued groups."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:GROUP], self._queue[GROUP:]
            try:
                pool = self._pool()
                if len(group) > 1:
                    try:
                        async with pool.acquire() as conn, conn.transaction():
                            await self.write(conn, *(buffer for buffer, _ in group))
                    except Exception:  # noqa: S110 - each is tried alone below, with its error
                        pass
                    else:
                        _settle(group, None)
                        continue
                for buffer, future in group:
                    try:
                        async with pool.acquire() as conn, conn.transaction():
                            await self.write(conn, buffer)
                    except Exception as exc:
                        _settle([(buffer, future)], self._error(exc))
                    else:
                        _settle([(buffer, future)], None)
            except Exception as exc:  # the pool is gone (closed meanwhile)
                _settle(group, self._error(exc))
