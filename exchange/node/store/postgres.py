"""The PostgreSQL party store (asyncpg), for a party run as several processes.

Each group of transactions is one PostgreSQL transaction (``_postgres_writer``); its
statements and audit chaining are in ``_postgres_sql``. Every process of a party extends one
chain: no gaps, no forks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from exchange._clock import Clock
from exchange.exceptions import StoreError
from exchange.ledger import codec
from exchange.ledger.event import AuditRecord
from exchange.node.store import _postgres_sql as sql
from exchange.node.store import _rows
from exchange.node.store._buffer import TransactionBuffer
from exchange.node.store._postgres_writer import GroupWriter
from exchange.node.store.base import (
    FINISHED_INBOX,
    FINISHED_OUTBOX,
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
    Transaction,
)

if TYPE_CHECKING:
    import asyncpg

PRUNE_BATCH = 500  # messages per table per prune transaction


class PostgresStore:
    """A party's store in one PostgreSQL schema, shared by all processes of that party."""

    def __init__(
        self,
        dsn: str,
        party: str,
        clock: Clock,
        schema: str = "exchange",
        *,
        min_connections: int = 1,
        max_connections: int = 10,
        timeout: float = 10.0,
    ) -> None:
        if not sql.SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema {schema!r} must be a lower-case SQL identifier")
        self.dsn = dsn
        self.party = party
        self.schema = schema
        self._min = min_connections
        self._max = max_connections
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._sql = sql.Statements(schema)
        self._writer = GroupWriter(self._sql, party, clock, self._require_pool, self._store_error)

    def _where(self) -> str:
        return f"{self.dsn.rsplit('@', 1)[-1]} (schema {self.schema})"

    async def open(self) -> None:
        """Connect a pool, create the schema and tables if needed, and claim them for the party.

        Raises:
            StoreUnavailable (store-unavailable): PostgreSQL cannot be reached.
            StoreError (store-error): the schema belongs to another party.
        """
        if self._pool is not None:
            return
        try:
            import asyncpg
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError(
                "PostgresStore needs asyncpg: pip install 'kazan-exchange[postgres]'"
            ) from exc
        try:
            pool = await asyncpg.create_pool(
                self.dsn, min_size=self._min, max_size=self._max, timeout=self._timeout
            )
        except Exception as exc:
            self._raise_unavailable(exc)
            raise
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('exchange-ddl'))")
                await conn.execute(self._sql.ddl)
                await conn.execute(
                    f"INSERT INTO {self._sql.meta} (key, value) VALUES ('party', $1) "  # noqa: S608
                    "ON CONFLICT DO NOTHING",
                    self.party,
                )
                owner = await conn.fetchval(
                    f"SELECT value FROM {self._sql.meta} WHERE key = 'party'"  # noqa: S608
                )
        except Exception as exc:
            await pool.close()
            self._raise_unavailable(exc)
            raise
        if owner != self.party:
            await pool.close()
            raise StoreError(
                f"schema {self.schema} belongs to party {owner!r}, not {self.party!r}",
                schema=self.schema,
                party=owner,
            )
        self._pool = pool

    async def close(self) -> None:
        """Close the pool (waiting for running and queued transactions)."""
        await self._writer.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction, committed when the block exits normally (with the others queued
        meanwhile, in one PostgreSQL transaction)."""
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        buffer = TransactionBuffer()
        try:
            yield buffer
        finally:
            buffer.closed = True
        if buffer.empty():
            return
        self._require_pool()
        await self._writer.submit(buffer)

    def _store_error(self, exc: Exception) -> Exception:
        """What a transaction's caller gets: the store's own errors, else StoreUnavailable."""
        if isinstance(exc, StoreError):
            return exc
        return sql.unavailable(exc, self._where(), self.schema) or exc

    async def prune_messages(
        self,
        older_than: datetime,
        *,
        outbox_states: Collection[OutboxState] = FINISHED_OUTBOX,
        inbox_states: Collection[InboxState] = FINISHED_INBOX,
    ) -> int:
        """Empty the wire of finished messages older than ``older_than``, in batches.

        Each batch is one transaction, audited in it (``content-pruned``); rows another
        process is pruning at the same time are skipped, not waited for.

        Raises:
            ValueError: a state is not finished.
            StoreUnavailable (store-unavailable): PostgreSQL cannot be reached.
        """
        pool = self._require_pool()
        total = 0
        while True:
            op = _rows.prune_op(older_than, outbox_states, inbox_states, PRUNE_BATCH)
            buffer = TransactionBuffer()
            buffer.prune_wire(op)
            buffer.closed = True
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await self._writer.write(conn, buffer)
            except StoreError:
                raise
            except Exception as exc:
                self._raise_unavailable(exc)
                raise
            total += op.outbox + op.inbox
            if op.outbox < op.limit and op.inbox < op.limit:
                return total

    async def get_outbox(self, message_id: str) -> OutboxRecord | None:
        """One outgoing message, or None."""
        rows = await self._fetch(f"{self._sql.outbox} WHERE message_id = $1", message_id)
        return _rows.outbox_record(rows[0], codec.as_is) if rows else None

    async def get_inbox(self, message_id: str) -> InboxRecord | None:
        """One received message, or None."""
        rows = await self._fetch(f"{self._sql.inbox} WHERE message_id = $1", message_id)
        return _rows.inbox_record(rows[0], codec.as_is) if rows else None

    async def wires(self, message_ids: Collection[str]) -> dict[str, bytes]:
        """Stored wire bytes by digest, of sent and received messages, in one read."""
        if not message_ids:
            return {}
        rows = await self._fetch(self._sql.wires, list(message_ids))
        return {digest: bytes(wire) for digest, wire in rows}

    async def due_outbox(self, now: datetime, limit: int = 100) -> Sequence[OutboxRecord]:
        """PENDING and SENT messages whose next_attempt_at has come, oldest first."""
        rows = await self._fetch(
            f"{self._sql.outbox} WHERE state IN ($1, $2) "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= $3) "
            "ORDER BY created_at, message_id LIMIT $4",
            OutboxState.PENDING.value,
            OutboxState.SENT.value,
            now,
            limit,
        )
        return [_rows.outbox_record(r, codec.as_is) for r in rows]

    async def claim_inbox(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int = 100,
        ordered: Collection[str] = (),
        services: Collection[str] | None = None,
    ) -> Sequence[InboxRecord]:
        """Claim due requests for ``owner`` in one statement (``FOR UPDATE SKIP LOCKED``)."""
        rows = await self._fetch(
            self._sql.claim,
            InboxState.RECEIVED.value,
            now,
            owner,
            now + lease,
            limit,
            list(ordered),
            [InboxState.RECEIVED.value, InboxState.WAITING.value],
            None if services is None else list(services),
        )
        records = [
            replace(_rows.inbox_record(r, codec.as_is), claim_owner=owner, takeovers=r[-1])
            for r in rows
        ]
        return sorted(records, key=lambda r: (r.received_at, r.message_id))

    async def renew_claims(self, owner: str, until: datetime) -> None:
        """Extend every claim ``owner`` holds to ``until``."""
        await self._fetch(self._sql.renew, owner, until)

    async def take_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Hold the lease ``name`` for ``owner`` until ``until`` in one statement (an upsert)."""
        return bool(await self._fetch(self._sql.take_lease, name, owner, until, now))

    async def release_claim(self, owner: str, message_id: str) -> None:
        """End ``owner``'s claim of a request (a claim taken over meanwhile is left alone)."""
        await self._fetch(self._sql.hold, message_id, owner, True)

    async def inbox_by_state(self, state: InboxState, limit: int = 1000) -> Sequence[InboxRecord]:
        """Received messages in a state, oldest first."""
        rows = await self._fetch(
            f"{self._sql.inbox} WHERE state = $1 ORDER BY received_at, message_id LIMIT $2",
            state.value,
            limit,
        )
        return [_rows.inbox_record(r, codec.as_is) for r in rows]

    async def inbox_for(self, correlation_id: str) -> Sequence[InboxRecord]:
        """Messages received that refer to the request ``correlation_id``, oldest first."""
        rows = await self._fetch(
            f"{self._sql.inbox} WHERE correlation_id = $1 ORDER BY received_at, message_id",
            correlation_id,
        )
        return [_rows.inbox_record(r, codec.as_is) for r in rows]

    async def outbox_answering(self, correlation_id: str) -> Sequence[OutboxRecord]:
        """Messages this party sent that answer the request ``correlation_id``, oldest first."""
        rows = await self._fetch(
            f"{self._sql.outbox} WHERE correlation_id = $1 ORDER BY created_at, message_id",
            correlation_id,
        )
        return [_rows.outbox_record(r, codec.as_is) for r in rows]

    async def audit(self, since_seq: int = 0, limit: int = 10_000) -> Sequence[AuditRecord]:
        """Audit records with seq > since_seq, in order."""
        rows = await self._fetch(
            f"{self._sql.audit} WHERE seq > $1 ORDER BY seq LIMIT $2", since_seq, limit
        )
        return [codec.audit_record(r, codec.as_is) for r in rows]

    async def audit_head(self) -> tuple[int, str] | None:
        """The (seq, hash) of the last audit record, or None while the chain is empty."""
        rows = await self._fetch(self._sql.head)
        return (rows[0]["seq"], rows[0]["hash"]) if rows else None

    async def count_inbox(self, state: InboxState | None = None) -> int:
        """How many received messages (in a state)."""
        if state is None:
            rows = await self._fetch(self._sql.count_inbox)
        else:
            rows = await self._fetch(f"{self._sql.count_inbox} WHERE state = $1", state.value)
        return int(rows[0][0])

    async def count_outbox(self, state: OutboxState | None = None) -> int:
        """How many messages this party signed (in a state)."""
        if state is None:
            rows = await self._fetch(self._sql.count_outbox)
        else:
            rows = await self._fetch(f"{self._sql.count_outbox} WHERE state = $1", state.value)
        return int(rows[0][0])

    async def get_meta(self, key: str) -> str | None:
        """A value of the meta table, or None."""
        rows = await self._fetch(f"SELECT value FROM {self._sql.meta} WHERE key = $1", key)  # noqa: S608
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (committed when this returns)."""
        await self._fetch(self._sql.put_meta, key, value)

    async def add_checkpoint(self, seq: int, body: bytes) -> None:
        """Keep a signed audit checkpoint (an existing one at ``seq`` is kept)."""
        await self._fetch(self._sql.put_checkpoint, seq, body)

    async def add_ack(self, seq: int, body: bytes) -> None:
        """Keep the collector's signed head acknowledgment of ``seq`` (an existing one is kept)."""
        await self._fetch(self._sql.put_ack, seq, body)

    async def acks(self, since_seq: int = 0, limit: int = 1000) -> Sequence[tuple[int, bytes]]:
        """The collector's acknowledgments (seq, body) with seq > since_seq, in seq order."""
        rows = await self._fetch(
            f"{self._sql.acks} WHERE seq > $1 ORDER BY seq LIMIT $2", since_seq, limit
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def checkpoints(
        self, since_seq: int = 0, limit: int = 1000
    ) -> Sequence[tuple[int, bytes]]:
        """Signed checkpoints (seq, body) with seq > since_seq, in seq order."""
        rows = await self._fetch(
            f"{self._sql.checkpoints} WHERE seq > $1 ORDER BY seq LIMIT $2", since_seq, limit
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        pool = self._require_pool()
        try:
            return list(await pool.fetch(sql, *args))
        except Exception as exc:
            self._raise_unavailable(exc)
            raise

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError(f"the store at {self._where()} is not open")
        return self._pool

    def _raise_unavailable(self, exc: Exception) -> None:
        """Raise StoreUnavailable for connection, disk and shutdown errors; return otherwise."""
        error = sql.unavailable(exc, self._where(), self.schema)
        if error is not None:
            raise error from exc
