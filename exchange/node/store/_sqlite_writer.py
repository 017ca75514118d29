"""The SQLite store's writer: group writes on the event loop, fsyncs and checkpoints off it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import structlog

from exchange._clock import Clock
from exchange.exceptions import StoreUnavailable
from exchange.node.store import _sqlite_sql
from exchange.node.store._buffer import TransactionBuffer
from exchange.node.store._sqlite_sql import Busy, commit, stage_group, unavailable

log = structlog.get_logger("exchange.store")


@dataclass(slots=True)
class Pending:
    """A transaction queued for the writer, and the future its caller awaits."""

    buffer: TransactionBuffer
    future: asyncio.Future[None]


_CHECKPOINT_ROWS = 200  # rows changed between WAL checkpoints (some 200 KB of pages)
_BUSY_RETRY = (0.002, 0.005, 0.01, 0.02, 0.05)  # seconds between tries of a locked database


def _settle(group: list[Pending], errors: list[Exception | None]) -> None:
    for pending, error in zip(group, errors, strict=True):
        if pending.future.done():  # the caller was cancelled; the outcome stays in the store
            continue
        if error is None:
            pending.future.set_result(None)
        else:
            pending.future.set_exception(error)


class Writer:
    """The store's one writer: it group-commits, writing on the event loop, fsyncing off it.

    Every transaction queued while the previous group was committing is written in one
    SQLite transaction. The statements run on the loop: sqlite3 releases and retakes the GIL
    around every statement, so a writer thread fought the event loop for the GIL at every row
    (a quarter of a node's CPU went to those hand-offs). The COMMIT runs on a thread of its
    own: with ``synchronous=FULL`` it fsyncs, which can take from a millisecond to hundreds on
    a disk the broker shares, and the loop goes on meanwhile. A write lock held by another
    process (a CLI command) never blocks the loop: BEGIN IMMEDIATE fails at once, and the
    group is tried again a little later until ``busy_timeout`` has passed.

    The WAL checkpoint (which fsyncs) is not left to SQLite's auto-checkpoint, which would
    run it inside a COMMIT on the loop (up to 15 ms here): ``checkpoint`` runs it on another
    thread every ``_CHECKPOINT_ROWS`` changed rows, twice. The first copies the bulk while
    commits go on; commits wait only for the second, which copies what was committed
    meanwhile. So it always catches up, and the WAL starts over instead of growing under
    steady load. Checkpoints are small and frequent because each one ends in an fsync: one
    of some 2 MB (every 2000 rows) held the broker's own fsyncs on a shared disk long
    enough to triple the bus's p99 request-to-receipt latency.
    """

    def __init__(
        self,
        path: Path,
        party: str,
        clock: Clock,
        max_batch: int,
        busy_timeout: float,
        checkpoint: Callable[[], Awaitable[object]],
    ) -> None:
        self._path = path
        self._party = party
        self._clock = clock
        self._max_batch = max_batch
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._pending: list[Pending] = []
        self._scheduled: asyncio.Handle | None = None
        self._busy_tries = 0
        self._busy_since = 0.0
        self._checkpoint = checkpoint
        self._checkpointing: asyncio.Task[None] | None = None
        self._held = False  # commits wait for the end of a checkpoint
        self._changes_at_checkpoint = 0
        self._closing = False
        self._writing: asyncio.Task[None] | None = None
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")

    def open(self) -> None:
        """Open the connection and create the tables (blocking: run it in a thread).

        Raises:
            StoreUnavailable (store-unavailable): the file cannot be opened or written.
            StoreError (store-error): the file belongs to another party.
        """
        try:
            conn = _sqlite_sql.connect(self._path, self._busy_timeout)
        except sqlite3.Error as exc:
            raise unavailable(self._path, exc) from exc
        try:
            _sqlite_sql.prepare(conn, self._path, self._party)
            conn.execute("PRAGMA busy_timeout = 0")  # from now on the loop waits, not SQLite
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # see the class docstring
        except sqlite3.Error as exc:
            conn.close()
            raise unavailable(self._path, exc) from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def submit(self, buffer: TransactionBuffer) -> asyncio.Future[None]:
        """Queue a closed transaction; the future settles once it is committed."""
        if self._conn is None:
            raise StoreUnavailable(f"the writer of the store at {self._path} has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append(Pending(buffer, future))
        if self._scheduled is None and self._writing is None and not self._held:
            self._scheduled = loop.call_soon(self._flush)
        return future

    async def close(self) -> None:
        """Write what is queued, then close the connection."""
        self._closing = True
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._checkpointing is not None:
            await self._checkpointing
        while self._pending or self._writing is not None:
            if self._writing is None:
                self._flush()
            if self._writing is not None:
                await self._writing
            if self._scheduled is not None:  # locked by another process: wait as _flush does
                self._scheduled.cancel()
                self._scheduled = None
                await asyncio.sleep(_BUSY_RETRY[-1])
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._committer.shutdown(wait=True)

    def _flush(self) -> None:
        self._scheduled = None
        if self._conn is None or self._held or self._writing is not None or not self._pending:
            return  # the checkpoint's or the running write's end schedules the next flush
        self._writing = asyncio.get_running_loop().create_task(self._write(self._conn))

    async def _write(self, conn: sqlite3.Connection) -> None:
        # A task of its own: a caller cancelled while waiting cannot cancel a commit.
        loop = asyncio.get_running_loop()
        try:
            while self._pending and not self._held:
                group = self._pending[: self._max_batch]
                try:
                    errors = stage_group(
                        conn, [p.buffer for p in group], self._party, self._clock.now(), self._path
                    )
                except Busy as busy:
                    if self._busy_tries == 0:
                        self._busy_since = loop.time()
                    if loop.time() - self._busy_since < self._busy_timeout:
                        delay = _BUSY_RETRY[min(self._busy_tries, len(_BUSY_RETRY) - 1)]
                        self._busy_tries += 1
                        self._scheduled = loop.call_later(delay, self._flush)
                        return
                    errors = [unavailable(self._path, busy.cause)] * len(group)
                self._busy_tries = 0
                del self._pending[: len(group)]
                if conn.in_transaction:
                    failure = await loop.run_in_executor(self._committer, commit, conn, self._path)
                    if failure is not None:
                        errors = [e or failure for e in errors]
                _settle(group, errors)
        finally:
            self._writing = None
        if conn.total_changes - self._changes_at_checkpoint >= _CHECKPOINT_ROWS:
            self._changes_at_checkpoint = conn.total_changes
            if not self._closing and self._checkpointing is None:
                self._checkpointing = loop.create_task(self._checkpointed())

    async def _checkpointed(self) -> None:
        try:
            await self._checkpoint()  # the bulk, while commits go on
            self._held = True
            if self._writing is not None:
                await self._writing  # it stops after the group it is committing
            await self._checkpoint()  # the rest, with commits held: now the WAL can start over
        except Exception as exc:  # the WAL only grows until the next checkpoint
            log.warning("store.checkpoint_failed", path=str(self._path), error=str(exc))
        finally:
            self._checkpointing = None
            self._held = False
            if self._pending and self._scheduled is None and self._conn is not None:
                self._scheduled = asyncio.get_running_loop().call_soon(self._flush)
