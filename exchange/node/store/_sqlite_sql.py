"""The SQLite store's statements: schema, connections, and one group commit's writes.

A group is written with batched statements; if one of its transactions fails (a duplicate,
a state conflict), it is written again with one SAVEPOINT per transaction, so that only the
failing ones are rolled back. The audit chain is numbered and linked here, at commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

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

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    message_id TEXT PRIMARY KEY, kind TEXT NOT NULL, recipient TEXT NOT NULL,
    service TEXT NOT NULL, correlation_id TEXT, case_id TEXT, wire BLOB NOT NULL,
    digest TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, created_at);
CREATE INDEX IF NOT EXISTS outbox_correlation ON outbox (correlation_id);
CREATE INDEX IF NOT EXISTS outbox_unpruned ON outbox (created_at) WHERE length(wire) > 0;
CREATE TABLE IF NOT EXISTS inbox (
    message_id TEXT PRIMARY KEY, kind TEXT NOT NULL, sender TEXT NOT NULL,
    service TEXT NOT NULL, correlation_id TEXT, case_id TEXT, wire BLOB NOT NULL,
    digest TEXT NOT NULL, received_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt_at TEXT, receipt_wire BLOB
);
CREATE INDEX IF NOT EXISTS inbox_state ON inbox (state, received_at);
CREATE INDEX IF NOT EXISTS inbox_correlation ON inbox (correlation_id);
CREATE INDEX IF NOT EXISTS inbox_unpruned ON inbox (received_at) WHERE length(wire) > 0;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, party TEXT NOT NULL, event TEXT NOT NULL,
    message_id TEXT, correlation_id TEXT, case_id TEXT, service TEXT, kind TEXT, digest TEXT,
    detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_message ON audit (message_id);
CREATE INDEX IF NOT EXISTS audit_case ON audit (case_id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS checkpoints (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit_acks (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
COMMIT;
"""


def _insert(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608


def _select(table: str, columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(columns)} FROM {table}"  # noqa: S608


def _update_state(table: str) -> str:
    return (
        f"UPDATE {table} SET state = ?, attempts = COALESCE(?, attempts), "  # noqa: S608
        "next_attempt_at = COALESCE(?, next_attempt_at) WHERE message_id = ?"
    )


_INSERT_OUTBOX = _insert("outbox", _rows.OUTBOX_COLUMNS)
_INSERT_INBOX = _insert("inbox", _rows.INBOX_COLUMNS)
_INSERT_AUDIT = _insert("audit", codec.AUDIT_COLUMNS)
_UPDATE_OUTBOX = _update_state("outbox")
_UPDATE_INBOX = _update_state("inbox")
SELECT_OUTBOX = _select("outbox", _rows.OUTBOX_COLUMNS)
SELECT_INBOX = _select("inbox", _rows.INBOX_COLUMNS)
SELECT_AUDIT = _select("audit", codec.AUDIT_COLUMNS)
_CLAIMABLE = f"SELECT {', '.join(_rows.INBOX_COLUMNS)}, claim_owner, takeovers FROM inbox i"  # noqa: S608
# Inserted, or taken over from its owner or an expired holder: one row changed; else none.
_TAKE_LEASE = (
    "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO "
    "UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
    "WHERE leases.owner = excluded.owner OR leases.expires_at <= ?"
)
SCHEMA_VERSION = "2"
# Version 2: a worker's claim of a request (owner, lease expiry) and its takeover count.
_CLAIM_COLUMNS = (
    ("claim_owner", "TEXT"),
    ("claim_expires_at", "TEXT"),
    ("takeovers", "INTEGER NOT NULL DEFAULT 0"),
)


def to_text(value: datetime | None) -> str | None:
    """Times go into SQLite as fixed-width UTC ISO text, so text order is time order."""
    return None if value is None else audit_chain.canonical_time(value)


def unavailable(path: Path, exc: sqlite3.Error) -> StoreUnavailable:
    reason = str(exc)
    if "full" in reason:
        hint = "disk full — free space and restart the node"
    elif "locked" in reason or "busy" in reason:
        hint = f"{reason} — another process holds the database; stop it and restart the node"
    else:
        hint = f"{reason} — check the disk and the file's permissions, then restart the node"
    return StoreUnavailable(f"cannot write the store at {path}: {hint}", path=str(path))


def connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous=FULL; usable from any one thread at a time.

    FULL fsyncs the WAL at every commit: the receiver acks a delivery once its transaction
    commits, and the broker then forgets it, so a commit must survive a power loss, not
    only a killed process (DESIGN.md, Durable before acknowledged).
    """
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


class Busy(Exception):
    """Another connection holds the write lock: the group is tried again a little later."""

    def __init__(self, cause: sqlite3.OperationalError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(exc)


AUDIT_HEAD = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"


def _begin(conn: sqlite3.Connection) -> tuple[int, str]:
    """BEGIN IMMEDIATE and return the audit chain's head (seq, hash).

    Raises Busy (nothing written) if another connection holds the write lock.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            raise Busy(exc) from exc
        raise
    row = conn.execute(AUDIT_HEAD).fetchone()
    return (row[0], row[1]) if row else (0, audit_chain.GENESIS_HASH)


def stage_group(
    conn: sqlite3.Connection,
    group: Sequence[TransactionBuffer],
    party: str,
    at: datetime,
    path: Path,
) -> list[Exception | None]:
    """Write a group in one SQLite transaction, left open; return each one's error or None.

    The fast path writes the whole group with batched statements. If any batch fails
    (a duplicate, a state conflict), it starts over with one SAVEPOINT per batch, so that
    only the failing batches are rolled back. While ``conn.in_transaction``, the caller
    commits with ``commit`` (its fsync may run on another thread); otherwise the group
    failed as a whole and was rolled back.

    Raises:
        Busy: another connection holds the write lock; nothing was written.
    """
    errors: list[Exception | None] = [None] * len(group)
    linker = audit_chain.Linker(at, party)  # one per group: the whole group shares its time
    try:
        seq, head = _begin(conn)
        try:
            _apply_group(conn, group, linker, seq, head)
        except (sqlite3.IntegrityError, StoreError, ValueError, TypeError):
            conn.execute("ROLLBACK")
            seq, head = _begin(conn)  # another process may have written in between
            for i, buffer in enumerate(group):
                conn.execute("SAVEPOINT batch")
                try:
                    seq, head = _apply(conn, buffer, linker, seq, head)
                except (StoreError, ValueError, TypeError) as exc:
                    conn.execute("ROLLBACK TO batch")
                    errors[i] = exc
                conn.execute("RELEASE batch")
    except Busy:
        _rollback(conn)
        raise
    except sqlite3.IntegrityError as exc:  # a bug, not the disk: say so
        _rollback(conn)
        return [e or StoreError(f"store write failed: {exc}") for e in errors]
    except sqlite3.Error as exc:
        _rollback(conn)
        return [e or unavailable(path, exc) for e in errors]
    except Exception as exc:
        _rollback(conn)
        return [e or StoreError(f"store write failed: {exc!r}") for e in errors]
    return errors


def commit(conn: sqlite3.Connection, path: Path) -> StoreUnavailable | None:
    """COMMIT what ``stage_group`` wrote (blocking: with synchronous=FULL it fsyncs).

    Return None once it is durable, or the error every transaction of the group gets (then
    nothing of it was written).
    """
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        return unavailable(path, exc)
    return None


def _apply_group(
    conn: sqlite3.Connection,
    group: Sequence[TransactionBuffer],
    linker: audit_chain.Linker,
    seq: int,
    head: str,
) -> None:
    """Run every batch's statements, consecutive inserts into one table as one executemany."""
    sql: str | None = None
    rows: list[tuple[Any, ...]] = []
    extra: dict[int, list[AuditEvent]] = {}  # events operations audit themselves (prunes)
    for i, buffer in enumerate(group):
        for op in buffer.operations:
            if isinstance(op, OutboxRecord):
                next_sql, row = _INSERT_OUTBOX, _rows.outbox_values(op, to_text)
            elif isinstance(op, InboxRecord):
                next_sql, row = _INSERT_INBOX, _rows.inbox_values(op, to_text)
            else:
                if sql is not None:
                    conn.executemany(sql, rows)
                    sql, rows = None, []
                if (event := _apply_op(conn, op)) is not None:
                    extra.setdefault(i, []).append(event)
                continue
            if next_sql is not sql:
                if sql is not None:
                    conn.executemany(sql, rows)
                sql, rows = next_sql, []
            rows.append(row)
    if sql is not None:
        conn.executemany(sql, rows)
    audit: list[tuple[Any, ...]] = []
    for i, buffer in enumerate(group):
        events = buffer.events
        if i in extra:
            events = [*events, *extra[i]]
        if events:
            seq, head = codec.chain_audit(events, linker, linker.at_text, seq, head, audit)
    if audit:
        conn.executemany(_INSERT_AUDIT, audit)


def _apply(
    conn: sqlite3.Connection,
    buffer: TransactionBuffer,
    linker: audit_chain.Linker,
    seq: int,
    head: str,
) -> tuple[int, str]:
    """Run one transaction's statements; return the new chain head (seq, hash)."""
    events = list(buffer.events)
    for op in buffer.operations:
        if isinstance(op, OutboxRecord):
            try:
                conn.execute(_INSERT_OUTBOX, _rows.outbox_values(op, to_text))
            except sqlite3.IntegrityError as exc:
                raise DuplicateMessage(
                    f"the outbox already holds message {op.message_id}: {exc}",
                    message_id=op.message_id,
                ) from exc
        elif isinstance(op, InboxRecord):
            try:
                conn.execute(_INSERT_INBOX, _rows.inbox_values(op, to_text))
            except sqlite3.IntegrityError as exc:
                raise DuplicateMessage(
                    f"message {op.message_id} was already received",
                    message_id=op.message_id,
                ) from exc
        elif (event := _apply_op(conn, op)) is not None:
            events.append(event)
    if events:
        audit: list[tuple[Any, ...]] = []
        seq, head = codec.chain_audit(events, linker, linker.at_text, seq, head, audit)
        conn.executemany(_INSERT_AUDIT, audit)
    return seq, head


def _apply_op(
    conn: sqlite3.Connection,
    op: StateChange,
) -> AuditEvent | None:
    """Run an operation other than an insert; return the audit event it owes, if any.

    A state change moves a record on, only from the allowed states if the operation names
    them.
    """
    if isinstance(op, HoldClaim | ClaimDue | RenewClaims):
        _claim_op(conn, op)
        return None
    if isinstance(op, TakeLease):
        taken = conn.execute(_TAKE_LEASE, (op.name, op.owner, to_text(op.until), to_text(op.now)))
        op.held = taken.rowcount == 1
        return None
    if isinstance(op, PutMeta):
        verb = "INSERT OR IGNORE" if op.only_new else "INSERT OR REPLACE"
        put = conn.execute(f"{verb} INTO meta (key, value) VALUES (?, ?)", (op.key, op.value))
        if put.rowcount != 1:
            raise StateConflict(f"meta {op.key} is set already", key=op.key)
        return None
    if isinstance(op, PutCheckpoint):
        table = "audit_acks" if op.acknowledgment else "checkpoints"
        conn.execute(
            f"INSERT OR IGNORE INTO {table} (seq, body) VALUES (?, ?)",  # noqa: S608
            (op.seq, op.body),
        )
        return None
    if isinstance(op, PruneWire):
        op.outbox = _prune(conn, "outbox", "created_at", op.outbox_states, op)
        op.inbox = _prune(conn, "inbox", "received_at", op.inbox_states, op)
        return _rows.pruned_event(op)
    table = "outbox" if isinstance(op, SetOutboxState) else "inbox"
    sql = _UPDATE_OUTBOX if isinstance(op, SetOutboxState) else _UPDATE_INBOX
    params: list[Any] = [op.state.value, op.attempts, to_text(op.next_attempt_at), op.message_id]
    if op.only_from is not None:
        sql += f" AND state IN ({', '.join('?' * len(op.only_from))})"
        params += [s.value for s in op.only_from]
    if conn.execute(sql, params).rowcount == 1:
        return None
    row = conn.execute(
        f"SELECT state FROM {table} WHERE message_id = ?",  # noqa: S608
        (op.message_id,),
    ).fetchone()
    if row is None:
        raise StoreError(
            f"no {table} message {op.message_id} to move to {op.state.value}",
            message_id=op.message_id,
        )
    raise StateConflict(
        f"{table} message {op.message_id} is {row[0]}, not "
        f"{' or '.join(s.value for s in op.only_from or ())}: not moved to {op.state.value}",
        message_id=op.message_id,
        state=row[0],
    )


def _claim_op(conn: sqlite3.Connection, op: HoldClaim | ClaimDue | RenewClaims) -> None:
    """Claims: the single writer makes each one atomic (no other process writes this file)."""
    if isinstance(op, RenewClaims):
        conn.execute(
            "UPDATE inbox SET claim_expires_at = ? WHERE claim_owner = ?",
            (to_text(op.until), op.owner),
        )
        return
    if isinstance(op, HoldClaim):
        release = (
            "claim_owner = NULL, claim_expires_at = NULL" if op.release else "takeovers = takeovers"
        )
        held = conn.execute(
            f"UPDATE inbox SET {release} WHERE message_id = ? AND claim_owner = ?",  # noqa: S608
            (op.message_id, op.owner),
        )
        if held.rowcount != 1:
            raise LeaseLost(
                f"the claim of request {op.message_id} by {op.owner} was taken over: "
                "its outcome is dropped, the new owner's run counts",
                message_id=op.message_id,
            )
        return
    now = to_text(op.now)
    sql = (
        f"{_CLAIMABLE} WHERE state = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
        "AND (claim_owner IS NULL OR (claim_expires_at <= ? AND claim_owner <> ?))"
    )
    params: list[Any] = [InboxState.RECEIVED.value, now, now, op.owner]
    if op.services is not None:
        sql += f" AND service IN ({', '.join('?' * len(op.services))})"
        params += op.services
    if op.ordered:
        marks = ", ".join("?" * len(op.ordered))
        sql += (
            f" AND NOT (i.service IN ({marks}) AND i.case_id IS NOT NULL AND EXISTS ("  # noqa: S608
            "SELECT 1 FROM inbox o WHERE o.case_id = i.case_id AND o.service = i.service "
            "AND o.kind = 'request' AND o.state IN (?, ?) AND (o.received_at < i.received_at "
            "OR (o.received_at = i.received_at AND o.message_id < i.message_id))))"
        )
        params += [*op.ordered, InboxState.RECEIVED.value, InboxState.WAITING.value]
    sql += " ORDER BY received_at, message_id LIMIT ?"
    rows = conn.execute(sql, [*params, op.limit]).fetchall()
    if not rows:
        return
    until = to_text(op.until)
    conn.executemany(
        "UPDATE inbox SET claim_owner = ?, claim_expires_at = ?, takeovers = ? "
        "WHERE message_id = ?",
        [(op.owner, until, _takeovers(r), r[0]) for r in rows],
    )
    width = len(_rows.INBOX_COLUMNS)
    op.claimed = [
        replace(
            _rows.inbox_record(r[:width], datetime.fromisoformat),
            claim_owner=op.owner,
            takeovers=_takeovers(r),
        )
        for r in rows
    ]


def _takeovers(row: Sequence[Any]) -> int:
    """The takeover count once claimed: one more when another owner's lease had expired."""
    return int(row[-1]) + (row[-2] is not None)


def _prune(
    conn: sqlite3.Connection,
    table: str,
    since: str,
    states: tuple[OutboxState, ...] | tuple[InboxState, ...],
    op: PruneWire,
) -> int:
    """Empty the wire of up to ``op.limit`` finished rows of ``table``, oldest first.

    ``+state`` keeps SQLite off the state index (which holds every pruned row too) and on
    the partial index of unpruned rows, so a prune costs what is left to prune.
    """
    if not states:
        return 0
    marks = ", ".join("?" * len(states))
    sql = (
        f"UPDATE {table} SET wire = ? WHERE rowid IN (SELECT rowid FROM {table} "  # noqa: S608
        f"WHERE +state IN ({marks}) AND {since} < ? AND length(wire) > 0 "
        f"ORDER BY {since} LIMIT ?)"
    )
    params = (PRUNED, *(s.value for s in states), to_text(op.older_than), op.limit)
    return conn.execute(sql, params).rowcount


def prepare(conn: sqlite3.Connection, path: Path, party: str) -> None:
    """Create the tables if needed and claim the file for ``party`` (or refuse another's)."""
    conn.executescript(_SCHEMA)
    _migrate(conn)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('party', ?)", (party,))
    (owner,) = conn.execute("SELECT value FROM meta WHERE key = 'party'").fetchone()
    if owner != party:
        raise StoreError(
            f"the store at {path} belongs to party {owner!r}, not {party!r}",
            path=str(path),
            party=owner,
        )


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store of an older schema version up to ``SCHEMA_VERSION`` (columns added)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(inbox)")}
    missing = [(name, kind) for name, kind in _CLAIM_COLUMNS if name not in have]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, kind in missing:
            conn.execute(f"ALTER TABLE inbox ADD COLUMN {name} {kind}")
        conn.execute("CREATE INDEX IF NOT EXISTS inbox_case ON inbox (case_id, received_at)")
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version' AND CAST(value AS INTEGER) < ?",
            (SCHEMA_VERSION, int(SCHEMA_VERSION)),
        )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
