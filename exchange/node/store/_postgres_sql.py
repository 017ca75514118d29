"""The PostgreSQL store's statements: schema, and one transaction's writes.

A transaction's operations are written with its own statements; its audit events are
numbered and linked here, under a transaction-scoped advisory lock keyed on the schema and
the party, so that every process of a party extends one chain: no gaps, no forks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
from exchange.ledger.event import AuditEvent
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
    TakeLease,
    TransactionBuffer,
)
from exchange.node.store.base import PRUNED, InboxRecord, InboxState, OutboxRecord, OutboxState

if TYPE_CHECKING:
    import asyncpg

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

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
CREATE TABLE IF NOT EXISTS {s}.leases (
    name text PRIMARY KEY, owner text NOT NULL, expires_at timestamptz NOT NULL
);
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


class Statements:
    """Every statement of a party's store in one schema, written out once."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        s = f'"{schema}"'
        self.ddl = _DDL.format(s=s)
        # A known message id is a duplicate, not an error: ON CONFLICT keeps the transaction
        # alive and the caller (Node.request with a message_id) returns the stored one.
        self.insert_outbox = (
            _insert(f"{s}.outbox", _rows.OUTBOX_COLUMNS) + " ON CONFLICT (message_id) DO NOTHING"
        )
        self.insert_inbox = _insert(f"{s}.inbox", _rows.INBOX_COLUMNS)
        self.insert_audit = _insert(f"{s}.audit", codec.AUDIT_COLUMNS, {"detail": "::jsonb"})
        update = (
            "UPDATE {t} SET state = $1, attempts = COALESCE($2, attempts), "
            "next_attempt_at = COALESCE($3, next_attempt_at) "
            "WHERE message_id = $4 AND ($5::text[] IS NULL OR state = ANY($5::text[]))"
        )
        self.update_outbox = update.format(t=f"{s}.outbox")
        self.update_inbox = update.format(t=f"{s}.inbox")
        self.state_outbox = f"SELECT state FROM {s}.outbox WHERE message_id = $1"  # noqa: S608
        self.state_inbox = f"SELECT state FROM {s}.inbox WHERE message_id = $1"  # noqa: S608
        self.outbox = _select(f"{s}.outbox", _rows.OUTBOX_COLUMNS)
        self.inbox = _select(f"{s}.inbox", _rows.INBOX_COLUMNS)
        self.audit = _select(f"{s}.audit", codec.AUDIT_COLUMNS, {"detail": "::text"})
        self.head = f"SELECT seq, hash FROM {s}.audit ORDER BY seq DESC LIMIT 1"  # noqa: S608
        self.meta = s + ".meta"
        self.count_inbox = f"SELECT count(*) FROM {s}.inbox"  # noqa: S608
        self.count_outbox = f"SELECT count(*) FROM {s}.outbox"  # noqa: S608
        self.put_meta = (
            f"INSERT INTO {s}.meta (key, value) VALUES ($1, $2) "  # noqa: S608
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        self.add_meta = f"INSERT INTO {s}.meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"  # noqa: S608
        self.put_checkpoint = (
            f"INSERT INTO {s}.checkpoints (seq, body) VALUES ($1, $2) "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        self.checkpoints = f"SELECT seq, body FROM {s}.checkpoints"  # noqa: S608
        self.put_ack = self.put_checkpoint.replace(".checkpoints ", ".audit_acks ")
        self.acks = f"SELECT seq, body FROM {s}.audit_acks"  # noqa: S608
        prune = (
            "UPDATE {t} SET wire = $1 WHERE message_id IN (SELECT message_id FROM {t} "
            "WHERE state = ANY($2::text[]) AND {since} < $3 AND length(wire) > 0 "
            "ORDER BY {since} LIMIT $4 FOR UPDATE SKIP LOCKED)"
        )
        self.prune_outbox = prune.format(t=f"{s}.outbox", since="created_at")
        self.prune_inbox = prune.format(t=f"{s}.inbox", since="received_at")
        self.wires = (
            f"SELECT digest, wire FROM {s}.outbox WHERE message_id = ANY($1::text[]) "  # noqa: S608
            f"AND length(wire) > 0 UNION ALL SELECT digest, wire FROM {s}.inbox "
            "WHERE message_id = ANY($1::text[]) AND length(wire) > 0"
        )
        self.claim = _CLAIM.format(s=s, columns=", ".join(f"t.{c}" for c in _rows.INBOX_COLUMNS))
        self.renew = f"UPDATE {s}.inbox SET claim_expires_at = $2 WHERE claim_owner = $1"  # noqa: S608
        self.hold = (
            f"UPDATE {s}.inbox SET claim_owner = CASE WHEN $3 THEN NULL ELSE claim_owner END, "  # noqa: S608
            "claim_expires_at = CASE WHEN $3 THEN NULL ELSE claim_expires_at END "
            "WHERE message_id = $1 AND claim_owner = $2"
        )
        # Inserted, or taken over from its owner or an expired holder: a row; else none.
        self.take_lease = (
            f"INSERT INTO {s}.leases (name, owner, expires_at) VALUES ($1, $2, $3) "  # noqa: S608
            "ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, "
            f"expires_at = EXCLUDED.expires_at WHERE {s}.leases.owner = EXCLUDED.owner "
            f"OR {s}.leases.expires_at <= $4 RETURNING owner"
        )


async def apply(
    conn: asyncpg.Connection,
    sql: Statements,
    party: str,
    clock: Clock,
    *buffers: TransactionBuffer,
) -> None:
    """Write ``buffers`` in the open transaction of ``conn``, their audit events chained.

    Raises:
        DuplicateMessage, StateConflict, LeaseLost, StoreError: the change is refused (the
            caller rolls the transaction back).
    """
    import asyncpg

    events: list[AuditEvent] = []
    for buffer in buffers:
        events += buffer.events
        for op in buffer.operations:
            if isinstance(op, OutboxRecord):
                values = _rows.outbox_values(op, codec.as_is)
                if await conn.execute(sql.insert_outbox, *values) != "INSERT 0 1":
                    raise DuplicateMessage(
                        f"the outbox already holds message {op.message_id}",
                        message_id=op.message_id,
                    )
            elif isinstance(op, InboxRecord):
                try:
                    await conn.execute(sql.insert_inbox, *_rows.inbox_values(op, codec.as_is))
                except asyncpg.UniqueViolationError as exc:
                    raise DuplicateMessage(
                        f"message {op.message_id} was already received",
                        message_id=op.message_id,
                    ) from exc
            elif (event := await _set_state(conn, sql, op)) is not None:
                events.append(event)  # the buffer stays as the caller left it
    if not events:
        return
    # One chain per party, whichever process appends: hold the lock until commit.
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", sql.schema, party
    )
    head = await conn.fetchrow(sql.head)
    seq, prev = (head["seq"], head["hash"]) if head else (0, audit_chain.GENESIS_HASH)
    at = clock.now()
    rows: list[tuple[Any, ...]] = []
    codec.chain_audit(events, audit_chain.Linker(at, party), at, seq, prev, rows)
    await conn.executemany(sql.insert_audit, rows)


async def _set_state(
    conn: asyncpg.Connection, sql: Statements, op: StateChange
) -> AuditEvent | None:
    """Run an operation other than an insert; return the audit event it owes, if any.

    A state change moves a record on, only from the allowed states if the operation
    names them. The row lock UPDATE takes makes the state check and the change one
    step, across processes too.
    """
    if isinstance(op, PutMeta):
        put = sql.add_meta if op.only_new else sql.put_meta
        if await conn.execute(put, op.key, op.value) != "INSERT 0 1":
            raise StateConflict(f"meta {op.key} is set already", key=op.key)
        return None
    if isinstance(op, HoldClaim):
        # The row lock this UPDATE takes orders it against a takeover's claim.
        if await conn.execute(sql.hold, op.message_id, op.owner, op.release) != "UPDATE 1":
            raise LeaseLost(
                f"the claim of request {op.message_id} by {op.owner} was taken over: "
                "its outcome is dropped, the new owner's run counts",
                message_id=op.message_id,
            )
        return None
    if isinstance(op, ClaimDue | RenewClaims | TakeLease):
        raise TypeError("claims are Store methods, not transaction operations")
    if isinstance(op, PutCheckpoint):
        put = sql.put_ack if op.acknowledgment else sql.put_checkpoint
        await conn.execute(put, op.seq, op.body)
        return None
    if isinstance(op, PruneWire):
        op.outbox = await _prune(conn, sql.prune_outbox, op.outbox_states, op)
        op.inbox = await _prune(conn, sql.prune_inbox, op.inbox_states, op)
        return _rows.pruned_event(op)
    outbox = isinstance(op, SetOutboxState)
    table = "outbox" if outbox else "inbox"
    allowed = None if op.only_from is None else [s.value for s in op.only_from]
    status = await conn.execute(
        sql.update_outbox if outbox else sql.update_inbox,
        op.state.value,
        op.attempts,
        op.next_attempt_at,
        op.message_id,
        allowed,
    )
    if status == "UPDATE 1":
        return None
    state = await conn.fetchval(sql.state_outbox if outbox else sql.state_inbox, op.message_id)
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
    conn: asyncpg.Connection,
    statement: str,
    states: tuple[OutboxState, ...] | tuple[InboxState, ...],
    op: PruneWire,
) -> int:
    if not states:
        return 0
    status = await conn.execute(
        statement, PRUNED, [s.value for s in states], op.older_than, op.limit
    )
    return int(status.rsplit(" ", 1)[-1])


def unavailable(exc: Exception, where: str, schema: str) -> StoreUnavailable | None:
    """StoreUnavailable for connection, disk and shutdown errors (and rolled-back
    transactions, which are retried); None for any other error."""
    import asyncpg

    unreachable = (
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
    if isinstance(exc, unreachable):
        return StoreUnavailable(
            f"cannot reach the store at {where}: {exc} — check that PostgreSQL "
            "is running and reachable, then retry",
            schema=schema,
        )
    # A deadlock or serialization failure with another process of the party (claims, group
    # commits) rolled the transaction back: nothing was written, and trying again works.
    if isinstance(exc, asyncpg.TransactionRollbackError):
        return StoreUnavailable(
            f"the store at {where} rolled back a transaction that met another "
            f"process's ({exc}); it is retried",
            schema=schema,
        )
    return None
