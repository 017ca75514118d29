"""The PostgreSQL party store (asyncpg), for a party run as several processes.

Each transaction is one PostgreSQL transaction. Audit appends take a transaction-scoped
advisory lock keyed on the schema and the party, so every process of a party extends one
chain: no gaps, no forks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from exchange._clock import Clock
from exchange.exceptions import (
    DuplicateMessage,
    LeaseLost,
    StateConflict,
    StoreError,
    StoreUnavailable,
)
from exchange.ledger import chain as audit_chain
from exchange.ledger import codec
from exchange.ledger.event import AuditEvent, AuditRecord
from exchange.node.store import _rows
from exchange.node.store._buffer import (
    ClaimDue,
    HoldClaim,
    PruneWire,
    PutCheckpoint,
    PutMeta,
    RenewClaims,
    SetOutboxState,
    StateChange,
    TransactionBuffer,
)
from exchange.node.store.base import (
    FINISHED_INBOX,
    FINISHED_OUTBOX,
    PRUNED,
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
    Transaction,
)

if TYPE_CHECKING:
    import asyncpg

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
PRUNE_BATCH = 500  # messages per table per prune transaction
_GROUP = 64  # transactions per group commit at most


def _settle(
    group: Sequence[tuple[TransactionBuffer, asyncio.Future[None]]], error: Exception | None
) -> None:
    for _, future in group:
        if future.done():  # the caller was cancelled; the outcome stays in the store
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.outbox (
    message_id text PRIMARY KEY, kind text NOT NULL, recipient text NOT NULL,
    service text NOT NULL, correlation_id text, case_id text, wire bytea NOT NULL,
    digest text NOT NULL, created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL,
    state text NOT NULL, attempts integer NOT NULL, next_attempt_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_state ON {s}.outbox (state, created_at);
CREATE INDEX IF NOT EXISTS outbox_correlation ON {s}.outbox (correlation_id);
CREATE INDEX IF NOT EXISTS outbox_unpruned ON {s}.outbox (created_at) WHERE length(wire) > 0;
CREATE TABLE IF NOT EXISTS {s}.inbox (
    message_id text PRIMARY KEY, kind text NOT NULL, sender text NOT NULL,
    service text NOT NULL, correlation_id text, case_id text, wire bytea NOT NULL,
    digest text NOT NULL, received_at timestamptz NOT NULL, expires_at timestamptz NOT NULL,
    state text NOT NULL, attempts integer NOT NULL, next_attempt_at timestamptz,
    receipt_wire bytea
);
CREATE INDEX IF NOT EXISTS inbox_state ON {s}.inbox (state, received_at);
CREATE INDEX IF NOT EXISTS inbox_correlation ON {s}.inbox (correlation_id);
CREATE INDEX IF NOT EXISTS inbox_unpruned ON {s}.inbox (received_at) WHERE length(wire) > 0;
CREATE TABLE IF NOT EXISTS {s}.audit (
    seq bigint PRIMARY KEY, at timestamptz NOT NULL, party text NOT NULL, event text NOT NULL,
    message_id text, correlation_id text, case_id text, service text, kind text, digest text,
    detail jsonb NOT NULL, prev_hash text NOT NULL, hash text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_message ON {s}.audit (message_id);
CREATE INDEX IF NOT EXISTS audit_case ON {s}.audit (case_id);
CREATE OR REPLACE FUNCTION {s}.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.audit
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.audit_append_only();
CREATE TABLE IF NOT EXISTS {s}.checkpoints (seq bigint PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.audit_acks (seq bigint PRIMARY KEY, body bytea NOT NULL);
INSERT INTO {s}.meta (key, value) VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;
-- Version 2: a worker's claim of a request (owner, lease expiry) and its takeover count.
ALTER TABLE {s}.inbox ADD COLUMN IF NOT EXISTS claim_owner text,
    ADD COLUMN IF NOT EXISTS claim_expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS takeovers integer NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS inbox_case ON {s}.inbox (case_id, received_at);
UPDATE {s}.meta SET value = '2' WHERE key = 'schema_version' AND value::integer < 2;
"""

# Due requests, unclaimed or claimed by another owner whose lease expired; for ordered
# services, none while an older request of its case and service is open. SKIP LOCKED:
# processes claiming at the same time take different rows instead of waiting.
_CLAIM = """
WITH due AS (
    SELECT message_id, claim_owner AS was FROM {s}.inbox i
    WHERE state = $1 AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
      AND (claim_owner IS NULL OR (claim_expires_at <= $2 AND claim_owner <> $3))
      AND ($8::text[] IS NULL OR i.service = ANY($8::text[]))
      AND NOT (i.service = ANY($6::text[]) AND i.case_id IS NOT NULL AND EXISTS (
          SELECT 1 FROM {s}.inbox o WHERE o.case_id = i.case_id AND o.service = i.service
          AND o.kind = 'request' AND o.state = ANY($7::text[])
          AND (o.received_at, o.message_id) < (i.received_at, i.message_id)))
    ORDER BY received_at, message_id LIMIT $5
    FOR UPDATE OF i SKIP LOCKED
)
UPDATE {s}.inbox t SET claim_owner = $3, claim_expires_at = $4,
    takeovers = t.takeovers + (due.was IS NOT NULL)::integer
FROM due WHERE t.message_id = due.message_id
RETURNING {columns}, t.claim_owner, t.takeovers
"""


def _insert(table: str, columns: Sequence[str], casts: dict[str, str] | None = None) -> str:
    casts = casts or {}
    marks = ", ".join(f"${i}{casts.get(c, '')}" for i, c in enumerate(columns, 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608


def _select(table: str, columns: Sequence[str], casts: dict[str, str] | None = None) -> str:
    casts = casts or {}
    return f"SELECT {', '.join(c + casts.get(c, '') for c in columns)} FROM {table}"  # noqa: S608


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
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema {schema!r} must be a lower-case SQL identifier")
        self.dsn = dsn
        self.party = party
        self.schema = schema
        self._clock = clock
        self._min = min_connections
        self._max = max_connections
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._queue: list[tuple[TransactionBuffer, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        s = f'"{schema}"'
        self._ddl = _DDL.format(s=s)
        # A known message id is a duplicate, not an error: ON CONFLICT keeps the transaction
        # alive and the caller (Node.request with a message_id) returns the stored one.
        self._insert_outbox = (
            _insert(f"{s}.outbox", _rows.OUTBOX_COLUMNS) + " ON CONFLICT (message_id) DO NOTHING"
        )
        self._insert_inbox = _insert(f"{s}.inbox", _rows.INBOX_COLUMNS)
        self._insert_audit = _insert(f"{s}.audit", codec.AUDIT_COLUMNS, {"detail": "::jsonb"})
        update = (
            "UPDATE {t} SET state = $1, attempts = COALESCE($2, attempts), "
            "next_attempt_at = COALESCE($3, next_attempt_at) "
            "WHERE message_id = $4 AND ($5::text[] IS NULL OR state = ANY($5::text[]))"
        )
        self._update_outbox = update.format(t=f"{s}.outbox")
        self._update_inbox = update.format(t=f"{s}.inbox")
        self._state_outbox = f"SELECT state FROM {s}.outbox WHERE message_id = $1"  # noqa: S608
        self._state_inbox = f"SELECT state FROM {s}.inbox WHERE message_id = $1"  # noqa: S608
        self._outbox = _select(f"{s}.outbox", _rows.OUTBOX_COLUMNS)
        self._inbox = _select(f"{s}.inbox", _rows.INBOX_COLUMNS)
        self._audit = _select(f"{s}.audit", codec.AUDIT_COLUMNS, {"detail": "::text"})
        self._head = f"SELECT seq, hash FROM {s}.audit ORDER BY seq DESC LIMIT 1"  # noqa: S608
        self._meta = s + ".meta"
        self._count_inbox = f"SELECT count(*) FROM {s}.inbox"  # noqa: S608
        self._count_outbox = f"SELECT count(*) FROM {s}.outbox"  # noqa: S608
        self._put_meta = (
            f"INSERT INTO {s}.meta (key, value) VALUES ($1, $2) "  # noqa: S608
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        self._add_meta = f"INSERT INTO {s}.meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"  # noqa: S608
        self._put_checkpoint = (
            f"INSERT INTO {s}.checkpoints (seq, body) VALUES ($1, $2) "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        self._checkpoints = f"SELECT seq, body FROM {s}.checkpoints"  # noqa: S608
        self._put_ack = self._put_checkpoint.replace(".checkpoints ", ".audit_acks ")
        self._acks = f"SELECT seq, body FROM {s}.audit_acks"  # noqa: S608
        prune = (
            "UPDATE {t} SET wire = $1 WHERE message_id IN (SELECT message_id FROM {t} "
            "WHERE state = ANY($2::text[]) AND {since} < $3 AND length(wire) > 0 "
            "ORDER BY {since} LIMIT $4 FOR UPDATE SKIP LOCKED)"
        )
        self._prune_outbox = prune.format(t=f"{s}.outbox", since="created_at")
        self._prune_inbox = prune.format(t=f"{s}.inbox", since="received_at")
        self._claim = _CLAIM.format(s=s, columns=", ".join(f"t.{c}" for c in _rows.INBOX_COLUMNS))
        self._renew = f"UPDATE {s}.inbox SET claim_expires_at = $2 WHERE claim_owner = $1"  # noqa: S608
        self._hold = (
            f"UPDATE {s}.inbox SET claim_owner = CASE WHEN $3 THEN NULL ELSE claim_owner END, "  # noqa: S608
            "claim_expires_at = CASE WHEN $3 THEN NULL ELSE claim_expires_at END "
            "WHERE message_id = $1 AND claim_owner = $2"
        )

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
                await conn.execute(self._ddl)
                await conn.execute(
                    f"INSERT INTO {self._meta} (key, value) VALUES ('party', $1) "  # noqa: S608
                    "ON CONFLICT DO NOTHING",
                    self.party,
                )
                owner = await conn.fetchval(
                    f"SELECT value FROM {self._meta} WHERE key = 'party'"  # noqa: S608
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
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction, written as one PostgreSQL transaction when the block exits normally."""
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
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((buffer, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        """Group commit: what was queued while the previous group committed goes in one
        PostgreSQL transaction (one lock of the chain, one audit executemany, one commit).

        If the group fails (a state conflict, a duplicate, a lost lease, a deadlock with
        another process), it is rolled back and each transaction is written on its own,
        so that only the failing ones fail.
        """
        while self._queue:
            group, self._queue = self._queue[:_GROUP], self._queue[_GROUP:]
            try:
                pool = self._require_pool()
                if len(group) > 1:
                    try:
                        async with pool.acquire() as conn, conn.transaction():
                            await self._apply(conn, *(buffer for buffer, _ in group))
                    except Exception:  # noqa: S110 - each is tried alone below, with its error
                        pass
                    else:
                        _settle(group, None)
                        continue
                for buffer, future in group:
                    try:
                        async with pool.acquire() as conn, conn.transaction():
                            await self._apply(conn, buffer)
                    except Exception as exc:
                        _settle([(buffer, future)], self._store_error(exc))
                    else:
                        _settle([(buffer, future)], None)
            except Exception as exc:  # the pool is gone (closed meanwhile)
                _settle(group, self._store_error(exc))

    def _store_error(self, exc: Exception) -> Exception:
        """What a transaction's caller gets: the store's own errors, else StoreUnavailable."""
        if isinstance(exc, StoreError):
            return exc
        try:
            self._raise_unavailable(exc)
        except StoreUnavailable as unavailable:
            return unavailable
        return exc

    async def _apply(self, conn: asyncpg.Connection, *buffers: TransactionBuffer) -> None:
        import asyncpg

        events: list[AuditEvent] = []
        for buffer in buffers:
            events += buffer.events
            for op in buffer.operations:
                if isinstance(op, OutboxRecord):
                    values = _rows.outbox_values(op, codec.as_is)
                    if await conn.execute(self._insert_outbox, *values) != "INSERT 0 1":
                        raise DuplicateMessage(
                            f"the outbox already holds message {op.message_id}",
                            message_id=op.message_id,
                        )
                elif isinstance(op, InboxRecord):
                    try:
                        await conn.execute(self._insert_inbox, *_rows.inbox_values(op, codec.as_is))
                    except asyncpg.UniqueViolationError as exc:
                        raise DuplicateMessage(
                            f"message {op.message_id} was already received",
                            message_id=op.message_id,
                        ) from exc
                elif (event := await self._set_state(conn, op)) is not None:
                    events.append(event)  # the buffer stays as the caller left it
        if not events:
            return
        # One chain per party, whichever process appends: hold the lock until commit.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", self.schema, self.party
        )
        head = await conn.fetchrow(self._head)
        seq, prev = (head["seq"], head["hash"]) if head else (0, audit_chain.GENESIS_HASH)
        at = self._clock.now()
        rows: list[tuple[Any, ...]] = []
        codec.chain_audit(events, audit_chain.Linker(at, self.party), at, seq, prev, rows)
        await conn.executemany(self._insert_audit, rows)

    async def _set_state(
        self,
        conn: asyncpg.Connection,
        op: StateChange,
    ) -> AuditEvent | None:
        """Run an operation other than an insert; return the audit event it owes, if any.

        A state change moves a record on, only from the allowed states if the operation
        names them. The row lock UPDATE takes makes the state check and the change one
        step, across processes too.
        """
        if isinstance(op, PutMeta):
            put = self._add_meta if op.only_new else self._put_meta
            if await conn.execute(put, op.key, op.value) != "INSERT 0 1":
                raise StateConflict(f"meta {op.key} is set already", key=op.key)
            return None
        if isinstance(op, HoldClaim):
            # The row lock this UPDATE takes orders it against a takeover's claim.
            if await conn.execute(self._hold, op.message_id, op.owner, op.release) != "UPDATE 1":
                raise LeaseLost(
                    f"the claim of request {op.message_id} by {op.owner} was taken over: "
                    "its outcome is dropped, the new owner's run counts",
                    message_id=op.message_id,
                )
            return None
        if isinstance(op, ClaimDue | RenewClaims):
            raise TypeError("claims are Store methods, not transaction operations")
        if isinstance(op, PutCheckpoint):
            put = self._put_ack if op.acknowledgment else self._put_checkpoint
            await conn.execute(put, op.seq, op.body)
            return None
        if isinstance(op, PruneWire):
            op.outbox = await self._prune(conn, self._prune_outbox, op.outbox_states, op)
            op.inbox = await self._prune(conn, self._prune_inbox, op.inbox_states, op)
            return _rows.pruned_event(op)
        outbox = isinstance(op, SetOutboxState)
        table = "outbox" if outbox else "inbox"
        allowed = None if op.only_from is None else [s.value for s in op.only_from]
        status = await conn.execute(
            self._update_outbox if outbox else self._update_inbox,
            op.state.value,
            op.attempts,
            op.next_attempt_at,
            op.message_id,
            allowed,
        )
        if status == "UPDATE 1":
            return None
        state = await conn.fetchval(
            self._state_outbox if outbox else self._state_inbox, op.message_id
        )
        if state is None:
            raise StoreError(
                f"no {table} message {op.message_id} to move to {op.state.value}",
                message_id=op.message_id,
            )
        raise StateConflict(
            f"{table} message {op.message_id} is {state}, not "
            f"{' or '.join(allowed or ())}: not moved to {op.state.value}",
            message_id=op.message_id,
            state=state,
        )

    async def _prune(
        self,
        conn: asyncpg.Connection,
        sql: str,
        states: tuple[OutboxState, ...] | tuple[InboxState, ...],
        op: PruneWire,
    ) -> int:
        if not states:
            return 0
        status = await conn.execute(sql, PRUNED, [s.value for s in states], op.older_than, op.limit)
        return int(status.rsplit(" ", 1)[-1])

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
                    await self._apply(conn, buffer)
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
        rows = await self._fetch(f"{self._outbox} WHERE message_id = $1", message_id)
        return _rows.outbox_record(rows[0], codec.as_is) if rows else None

    async def get_inbox(self, message_id: str) -> InboxRecord | None:
        """One received message, or None."""
        rows = await self._fetch(f"{self._inbox} WHERE message_id = $1", message_id)
        return _rows.inbox_record(rows[0], codec.as_is) if rows else None

    async def due_outbox(self, now: datetime, limit: int = 100) -> Sequence[OutboxRecord]:
        """PENDING and SENT messages whose next_attempt_at has come, oldest first."""
        rows = await self._fetch(
            f"{self._outbox} WHERE state IN ($1, $2) "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= $3) "
            "ORDER BY created_at, message_id LIMIT $4",
            OutboxState.PENDING.value,
            OutboxState.SENT.value,
            now,
            limit,
        )
        return [_rows.outbox_record(r, codec.as_is) for r in rows]

    async def due_inbox(self, now: datetime, limit: int = 100) -> Sequence[InboxRecord]:
        """RECEIVED requests whose next_attempt_at is unset or has come, oldest first."""
        rows = await self._fetch(
            f"{self._inbox} WHERE state = $1 AND (next_attempt_at IS NULL OR next_attempt_at <= $2)"
            " ORDER BY received_at, message_id LIMIT $3",
            InboxState.RECEIVED.value,
            now,
            limit,
        )
        return [_rows.inbox_record(r, codec.as_is) for r in rows]

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
            self._claim,
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
        await self._fetch(self._renew, owner, until)

    async def release_claim(self, owner: str, message_id: str) -> None:
        """End ``owner``'s claim of a request (a claim taken over meanwhile is left alone)."""
        await self._fetch(self._hold, message_id, owner, True)

    async def inbox_by_state(self, state: InboxState, limit: int = 1000) -> Sequence[InboxRecord]:
        """Received messages in a state, oldest first."""
        rows = await self._fetch(
            f"{self._inbox} WHERE state = $1 ORDER BY received_at, message_id LIMIT $2",
            state.value,
            limit,
        )
        return [_rows.inbox_record(r, codec.as_is) for r in rows]

    async def inbox_for(self, correlation_id: str) -> Sequence[InboxRecord]:
        """Messages received that refer to the request ``correlation_id``, oldest first."""
        rows = await self._fetch(
            f"{self._inbox} WHERE correlation_id = $1 ORDER BY received_at, message_id",
            correlation_id,
        )
        return [_rows.inbox_record(r, codec.as_is) for r in rows]

    async def outbox_answering(self, correlation_id: str) -> Sequence[OutboxRecord]:
        """Messages this party sent that answer the request ``correlation_id``, oldest first."""
        rows = await self._fetch(
            f"{self._outbox} WHERE correlation_id = $1 ORDER BY created_at, message_id",
            correlation_id,
        )
        return [_rows.outbox_record(r, codec.as_is) for r in rows]

    async def audit(self, since_seq: int = 0, limit: int = 10_000) -> Sequence[AuditRecord]:
        """Audit records with seq > since_seq, in order."""
        rows = await self._fetch(
            f"{self._audit} WHERE seq > $1 ORDER BY seq LIMIT $2", since_seq, limit
        )
        return [codec.audit_record(r, codec.as_is) for r in rows]

    async def audit_head(self) -> tuple[int, str] | None:
        """The (seq, hash) of the last audit record, or None while the chain is empty."""
        rows = await self._fetch(self._head)
        return (rows[0]["seq"], rows[0]["hash"]) if rows else None

    async def count_inbox(self, state: InboxState | None = None) -> int:
        """How many received messages (in a state)."""
        if state is None:
            rows = await self._fetch(self._count_inbox)
        else:
            rows = await self._fetch(f"{self._count_inbox} WHERE state = $1", state.value)
        return int(rows[0][0])

    async def count_outbox(self, state: OutboxState | None = None) -> int:
        """How many messages this party signed (in a state)."""
        if state is None:
            rows = await self._fetch(self._count_outbox)
        else:
            rows = await self._fetch(f"{self._count_outbox} WHERE state = $1", state.value)
        return int(rows[0][0])

    async def get_meta(self, key: str) -> str | None:
        """A value of the meta table, or None."""
        rows = await self._fetch(f"SELECT value FROM {self._meta} WHERE key = $1", key)  # noqa: S608
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (committed when this returns)."""
        await self._fetch(self._put_meta, key, value)

    async def add_checkpoint(self, seq: int, body: bytes) -> None:
        """Keep a signed audit checkpoint (an existing one at ``seq`` is kept)."""
        await self._fetch(self._put_checkpoint, seq, body)

    async def add_ack(self, seq: int, body: bytes) -> None:
        """Keep the collector's signed head acknowledgment of ``seq`` (an existing one is kept)."""
        await self._fetch(self._put_ack, seq, body)

    async def acks(self, since_seq: int = 0, limit: int = 1000) -> Sequence[tuple[int, bytes]]:
        """The collector's acknowledgments (seq, body) with seq > since_seq, in seq order."""
        rows = await self._fetch(
            f"{self._acks} WHERE seq > $1 ORDER BY seq LIMIT $2", since_seq, limit
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def checkpoints(
        self, since_seq: int = 0, limit: int = 1000
    ) -> Sequence[tuple[int, bytes]]:
        """Signed checkpoints (seq, body) with seq > since_seq, in seq order."""
        rows = await self._fetch(
            f"{self._checkpoints} WHERE seq > $1 ORDER BY seq LIMIT $2", since_seq, limit
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
        import asyncpg

        unavailable = (
            OSError,
            TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.InsufficientResourcesError,  # disk full, out of memory, too many connections
            asyncpg.OperatorInterventionError,  # shutting down, cannot connect now
            asyncpg.PostgresSystemError,  # I/O error
            asyncpg.InvalidCatalogNameError,  # no such database
            asyncpg.InvalidAuthorizationSpecificationError,
        )
        if isinstance(exc, unavailable):
            raise StoreUnavailable(
                f"cannot reach the store at {self._where()}: {exc} — check that PostgreSQL "
                "is running and reachable, then retry",
                schema=self.schema,
            ) from exc
        # A deadlock or serialization failure with another process of the party (claims, group
        # commits) rolled the transaction back: nothing was written, and trying again works.
        if isinstance(exc, asyncpg.TransactionRollbackError):
            raise StoreUnavailable(
                f"the store at {self._where()} rolled back a transaction that met another "
                f"process's ({exc}); it is retried",
                schema=self.schema,
            ) from exc
