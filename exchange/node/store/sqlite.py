"""The SQLite party store: one writer group-commits transactions into a WAL database.

Transactions buffer their changes in memory. On exit they queue them for the writer, which
writes every transaction queued while the previous group committed in one SQLite
transaction; if one of them fails (a duplicate), only its own changes are rolled back.
``synchronous=FULL``: a commit survives a power loss, its fsync runs off the event loop;
reads use a second connection on a reader thread.
Use a store from one event loop at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from exchange._clock import Clock
from exchange.exceptions import LeaseLost, StoreError, StoreUnavailable
from exchange.ledger import codec
from exchange.ledger.event import AuditRecord
from exchange.node.store import _rows
from exchange.node.store._buffer import ClaimDue, RenewClaims, TakeLease, TransactionBuffer
from exchange.node.store._sqlite_sql import (
    AUDIT_HEAD,
    SELECT_AUDIT,
    SELECT_INBOX,
    SELECT_OUTBOX,
    connect,
    to_text,
)
from exchange.node.store._sqlite_writer import Writer
from exchange.node.store.base import (
    FINISHED_INBOX,
    FINISHED_OUTBOX,
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
    Transaction,
)

T = TypeVar("T")
PRUNE_BATCH = 500  # messages per table per prune transaction


class SQLiteStore:
    """A party's store in one SQLite file, for a party run as one process."""

    def __init__(
        self,
        path: Path,
        party: str,
        clock: Clock,
        *,
        max_batch: int = 256,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.party = party
        self._clock = clock
        self._max_batch = max_batch
        self._busy_timeout = busy_timeout
        self._writer: Writer | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._read_conn: sqlite3.Connection | None = None  # used on the reader thread only

    async def open(self) -> None:
        """Open the writer and start the reader thread; create the tables if needed.

        Raises:
            StoreUnavailable (store-unavailable): the file cannot be opened or written.
            StoreError (store-error): the file belongs to another party.
        """
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = Writer(
            self.path,
            self.party,
            self._clock,
            self._max_batch,
            self._busy_timeout,
            self._checkpoint,
        )
        await asyncio.to_thread(writer.open)
        self._writer = writer
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reader")
        try:
            await self._read(lambda conn: None)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Write every queued transaction, then close the writer and the reader thread."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.close()  # a checkpoint under way still needs the reader thread
        reader, self._reader = self._reader, None
        if reader is not None:
            await asyncio.get_running_loop().run_in_executor(reader, self._close_reader)
            reader.shutdown(wait=True)

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction, group-committed by the writer when the block exits normally."""
        return _Commit(self)

    async def get_outbox(self, message_id: str) -> OutboxRecord | None:
        """One outgoing message, or None."""
        rows = await self._fetch(f"{SELECT_OUTBOX} WHERE message_id = ?", (message_id,))
        return _rows.outbox_record(rows[0], datetime.fromisoformat) if rows else None

    async def get_inbox(self, message_id: str) -> InboxRecord | None:
        """One received message, or None."""
        rows = await self._fetch(f"{SELECT_INBOX} WHERE message_id = ?", (message_id,))
        return _rows.inbox_record(rows[0], datetime.fromisoformat) if rows else None

    async def wires(self, message_ids: Collection[str]) -> dict[str, bytes]:
        """Stored wire bytes by digest, of sent and received messages, in one read."""
        ids = tuple(message_ids)
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = await self._fetch(
            f"SELECT digest, wire FROM outbox WHERE message_id IN ({marks}) AND length(wire) > 0 "  # noqa: S608
            f"UNION ALL SELECT digest, wire FROM inbox WHERE message_id IN ({marks}) "
            "AND length(wire) > 0",
            ids + ids,
        )
        return {digest: bytes(wire) for digest, wire in rows}

    async def due_outbox(self, now: datetime, limit: int = 100) -> Sequence[OutboxRecord]:
        """PENDING and SENT messages whose next_attempt_at has come, oldest first."""
        rows = await self._fetch(
            f"{SELECT_OUTBOX} WHERE state IN (?, ?) "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
            "ORDER BY created_at, message_id LIMIT ?",
            (OutboxState.PENDING.value, OutboxState.SENT.value, to_text(now), limit),
        )
        return [_rows.outbox_record(r, datetime.fromisoformat) for r in rows]

    async def claim_inbox(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int = 100,
        ordered: Collection[str] = (),
        services: Collection[str] | None = None,
    ) -> Sequence[InboxRecord]:
        """Claim due requests for ``owner``: a write of the single writer, so it is atomic."""
        # A read first: an idle node polls, and a write per poll would cost a commit each.
        due = await self._fetch(
            "SELECT 1 FROM inbox WHERE state = ? AND (next_attempt_at IS NULL OR "
            "next_attempt_at <= ?) AND (claim_owner IS NULL OR claim_expires_at <= ?) LIMIT 1",
            (InboxState.RECEIVED.value, to_text(now), to_text(now)),
        )
        if not due:
            return []
        wanted = None if services is None else tuple(services)
        op = ClaimDue(owner, now, now + lease, limit, tuple(ordered), wanted)
        await self._submit(lambda buffer: buffer.operations.append(op))
        return op.claimed

    async def renew_claims(self, owner: str, until: datetime) -> None:
        """Extend every claim ``owner`` holds to ``until``."""
        await self._submit(lambda buffer: buffer.operations.append(RenewClaims(owner, until)))

    async def take_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Hold the lease ``name`` for ``owner`` until ``until``: a write of the single writer."""
        op = TakeLease(name, owner, now, until)
        await self._submit(lambda buffer: buffer.operations.append(op))
        return op.held

    async def release_claim(self, owner: str, message_id: str) -> None:
        """End ``owner``'s claim of a request (a claim taken over meanwhile is left alone)."""
        with contextlib.suppress(LeaseLost):
            await self._submit(lambda buffer: buffer.hold_claim(message_id, owner))

    async def inbox_by_state(self, state: InboxState, limit: int = 1000) -> Sequence[InboxRecord]:
        """Received messages in a state, oldest first."""
        rows = await self._fetch(
            f"{SELECT_INBOX} WHERE state = ? ORDER BY received_at, message_id LIMIT ?",
            (state.value, limit),
        )
        return [_rows.inbox_record(r, datetime.fromisoformat) for r in rows]

    async def inbox_for(self, correlation_id: str) -> Sequence[InboxRecord]:
        """Messages received that refer to the request ``correlation_id``, oldest first."""
        rows = await self._fetch(
            f"{SELECT_INBOX} WHERE correlation_id = ? ORDER BY received_at, message_id",
            (correlation_id,),
        )
        return [_rows.inbox_record(r, datetime.fromisoformat) for r in rows]

    async def outbox_answering(self, correlation_id: str) -> Sequence[OutboxRecord]:
        """Messages this party sent that answer the request ``correlation_id``, oldest first."""
        rows = await self._fetch(
            f"{SELECT_OUTBOX} WHERE correlation_id = ? ORDER BY created_at, message_id",
            (correlation_id,),
        )
        return [_rows.outbox_record(r, datetime.fromisoformat) for r in rows]

    async def audit(self, since_seq: int = 0, limit: int = 10_000) -> Sequence[AuditRecord]:
        """Audit records with seq > since_seq, in order."""
        rows = await self._fetch(
            f"{SELECT_AUDIT} WHERE seq > ? ORDER BY seq LIMIT ?", (since_seq, limit)
        )
        return [codec.audit_record(r, datetime.fromisoformat) for r in rows]

    async def audit_head(self) -> tuple[int, str] | None:
        """The (seq, hash) of the last audit record, or None while the chain is empty."""
        rows = await self._fetch(AUDIT_HEAD, ())
        return (rows[0][0], rows[0][1]) if rows else None

    async def count_inbox(self, state: InboxState | None = None) -> int:
        """How many received messages (in a state)."""
        if state is None:
            rows = await self._fetch("SELECT count(*) FROM inbox", ())
        else:
            rows = await self._fetch("SELECT count(*) FROM inbox WHERE state = ?", (state.value,))
        return int(rows[0][0])

    async def count_outbox(self, state: OutboxState | None = None) -> int:
        """How many messages this party signed (in a state)."""
        if state is None:
            rows = await self._fetch("SELECT count(*) FROM outbox", ())
        else:
            rows = await self._fetch("SELECT count(*) FROM outbox WHERE state = ?", (state.value,))
        return int(rows[0][0])

    async def get_meta(self, key: str) -> str | None:
        """A value of the meta table, or None."""
        rows = await self._fetch("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        """Set a meta value through the writer (committed when this returns)."""
        await self._submit(lambda buffer: buffer.put_meta(key, value))

    async def add_checkpoint(self, seq: int, body: bytes) -> None:
        """Keep a signed audit checkpoint (an existing one at ``seq`` is kept)."""
        await self._submit(lambda buffer: buffer.put_checkpoint(seq, body))

    async def add_ack(self, seq: int, body: bytes) -> None:
        """Keep the collector's signed head acknowledgment of ``seq`` (an existing one is kept)."""
        await self._submit(lambda buffer: buffer.put_checkpoint(seq, body, acknowledgment=True))

    async def acks(self, since_seq: int = 0, limit: int = 1000) -> Sequence[tuple[int, bytes]]:
        """The collector's acknowledgments (seq, body) with seq > since_seq, in seq order."""
        rows = await self._fetch(
            "SELECT seq, body FROM audit_acks WHERE seq > ? ORDER BY seq LIMIT ?",
            (since_seq, limit),
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def checkpoints(
        self, since_seq: int = 0, limit: int = 1000
    ) -> Sequence[tuple[int, bytes]]:
        """Signed checkpoints (seq, body) with seq > since_seq, in seq order."""
        rows = await self._fetch(
            "SELECT seq, body FROM checkpoints WHERE seq > ? ORDER BY seq LIMIT ?",
            (since_seq, limit),
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def prune_messages(
        self,
        older_than: datetime,
        *,
        outbox_states: Collection[OutboxState] = FINISHED_OUTBOX,
        inbox_states: Collection[InboxState] = FINISHED_INBOX,
    ) -> int:
        """Empty the wire of finished messages older than ``older_than``, in batches.

        Each batch is one transaction of the writer, audited there (``content-pruned``).

        Raises:
            ValueError: a state is not finished.
            StoreUnavailable (store-unavailable): the store cannot be written.
        """
        total = 0
        while True:
            op = _rows.prune_op(older_than, outbox_states, inbox_states, PRUNE_BATCH)
            await self._submit(functools.partial(TransactionBuffer.prune_wire, op=op))
            total += op.outbox + op.inbox
            if op.outbox < op.limit and op.inbox < op.limit:
                return total

    async def _submit(self, fill: Callable[[TransactionBuffer], None]) -> None:
        buffer = TransactionBuffer()
        fill(buffer)
        buffer.closed = True
        await self._queue(buffer)

    def _queue(self, buffer: TransactionBuffer) -> asyncio.Future[None]:
        """Hand a closed buffer to the writer; the future settles once it is committed."""
        if self._writer is None:
            raise StoreError(f"the store at {self.path} is not open")
        return self._writer.submit(buffer)

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database file, on the reader thread (it fsyncs)."""
        await self._read(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._read(lambda conn: conn.execute(sql, params).fetchall())

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise StoreError(f"the store at {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._reader, self._run_read, query)

    def _run_read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._read_conn is None:
                self._read_conn = connect(self.path, self._busy_timeout)
                self._read_conn.execute("PRAGMA query_only = ON")
            return query(self._read_conn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"cannot read the store at {self.path}: {exc}", path=str(self.path)
            ) from exc

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None


class _Commit:
    """One ``async with store.transaction()``: a buffer, queued for the writer on normal exit.

    A plain class rather than ``@asynccontextmanager``: no generator per transaction.
    """

    __slots__ = ("_buffer", "_store")

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._buffer = TransactionBuffer()

    async def __aenter__(self) -> Transaction:
        return self._buffer

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        buffer = self._buffer
        buffer.closed = True
        if exc_type is None and not buffer.empty():
            await self._store._queue(buffer)
