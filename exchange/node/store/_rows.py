"""Column lists and row decoding shared by the SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from exchange.node.store._buffer import PruneWire
from exchange.node.store.base import (
    FINISHED_INBOX,
    FINISHED_OUTBOX,
    AuditEvent,
    AuditRecord,
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
)

if TYPE_CHECKING:
    from exchange.audit.chain import Linker

OUTBOX_COLUMNS = (
    "message_id",
    "kind",
    "recipient",
    "service",
    "correlation_id",
    "case_id",
    "wire",
    "digest",
    "created_at",
    "expires_at",
    "state",
    "attempts",
    "next_attempt_at",
)
INBOX_COLUMNS = (
    "message_id",
    "kind",
    "sender",
    "service",
    "correlation_id",
    "case_id",
    "wire",
    "digest",
    "received_at",
    "expires_at",
    "state",
    "attempts",
    "next_attempt_at",
    "receipt_wire",
)
AUDIT_COLUMNS = (
    "seq",
    "at",
    "party",
    "event",
    "message_id",
    "correlation_id",
    "case_id",
    "service",
    "kind",
    "digest",
    "detail",
    "prev_hash",
    "hash",
)


TimeEncoder = Callable[[Any], Any]
"""Turns a time (or None) into what the driver stores: ISO text for SQLite, as is for asyncpg."""


def outbox_values(record: OutboxRecord, put: TimeEncoder) -> tuple[Any, ...]:
    """The record's values in ``OUTBOX_COLUMNS`` order, times through ``put``."""
    r = record
    return (
        r.message_id,
        r.kind,
        r.recipient,
        r.service,
        r.correlation_id,
        r.case_id,
        r.wire,
        r.digest,
        put(r.created_at),
        put(r.expires_at),
        r.state.value,
        r.attempts,
        put(r.next_attempt_at),
    )


def inbox_values(record: InboxRecord, put: TimeEncoder) -> tuple[Any, ...]:
    """The record's values in ``INBOX_COLUMNS`` order, times through ``put``."""
    r = record
    return (
        r.message_id,
        r.kind,
        r.sender,
        r.service,
        r.correlation_id,
        r.case_id,
        r.wire,
        r.digest,
        put(r.received_at),
        put(r.expires_at),
        r.state.value,
        r.attempts,
        put(r.next_attempt_at),
        r.receipt_wire,
    )


def audit_values(record: AuditRecord, put: TimeEncoder) -> tuple[Any, ...]:
    """The record's values in ``AUDIT_COLUMNS`` order, detail as its canonical JSON text."""
    from exchange.audit.chain import canonical_detail  # exchange.audit imports the store

    e = record.event
    detail = canonical_detail(e.detail)
    return (
        record.seq,
        put(record.at),
        record.party,
        e.event,
        e.message_id,
        e.correlation_id,
        e.case_id,
        e.service,
        e.kind,
        e.digest,
        detail,
        record.prev_hash,
        record.hash,
    )


def chain_audit(
    events: Iterable[AuditEvent],
    linker: Linker,
    at: Any,
    seq: int,
    head: str,
    rows: list[tuple[Any, ...]],
) -> tuple[int, str]:
    """Number and chain ``events`` after the head (seq, head); return the new head.

    Appends each record's row in ``AUDIT_COLUMNS`` order to ``rows``, its time stored as
    ``at`` and its detail as the canonical JSON its hash covers (no record objects are made).
    """
    party = linker.party
    for e in events:
        seq += 1
        detail = linker.detail(e.detail)
        link_hash = linker.hash(seq, e, detail, head)
        rows.append(
            (seq, at, party, e.event, e.message_id, e.correlation_id, e.case_id,
             e.service, e.kind, e.digest, detail, head, link_hash)
        )  # fmt: skip
        head = link_hash
    return seq, head


def prune_op(
    older_than: datetime,
    outbox_states: Collection[OutboxState],
    inbox_states: Collection[InboxState],
    limit: int,
) -> PruneWire:
    """One batch of ``Store.prune_messages``, its states checked to be finished ones.

    Raises:
        ValueError: an open state was named.
    """
    if older_than.tzinfo is None:
        raise ValueError("older_than must be timezone-aware")
    open_outbox = set(outbox_states) - FINISHED_OUTBOX
    open_inbox = set(inbox_states) - FINISHED_INBOX
    if open_outbox or open_inbox:
        names = sorted(s.value for s in (*open_outbox, *open_inbox))
        raise ValueError(f"messages in state {', '.join(names)} are not finished: never pruned")
    return PruneWire(
        older_than,
        tuple(sorted(outbox_states)),
        tuple(sorted(inbox_states)),
        limit,
    )


def pruned_event(op: PruneWire) -> AuditEvent | None:
    """The audit record of a prune batch (None when it emptied nothing)."""
    if not op.outbox and not op.inbox:
        return None
    # Imported here: exchange.audit.chain imports the store's base module.
    from exchange.audit.chain import canonical_time

    return AuditEvent(
        "content-pruned",
        detail={
            "older_than": canonical_time(op.older_than),
            "outbox": op.outbox,
            "inbox": op.inbox,
        },
    )


TimeDecoder = Callable[[Any], datetime]
"""Turns a stored time (ISO text in SQLite, a datetime from asyncpg) into an aware datetime."""


def outbox_record(row: Sequence[Any], when: TimeDecoder) -> OutboxRecord:
    """An OutboxRecord from a row in ``OUTBOX_COLUMNS`` order."""
    return OutboxRecord(
        message_id=row[0],
        kind=row[1],
        recipient=row[2],
        service=row[3],
        correlation_id=row[4],
        case_id=row[5],
        wire=bytes(row[6]),
        digest=row[7],
        created_at=when(row[8]),
        expires_at=when(row[9]),
        state=OutboxState(row[10]),
        attempts=row[11],
        next_attempt_at=None if row[12] is None else when(row[12]),
    )


def inbox_record(row: Sequence[Any], when: TimeDecoder) -> InboxRecord:
    """An InboxRecord from a row in ``INBOX_COLUMNS`` order."""
    return InboxRecord(
        message_id=row[0],
        kind=row[1],
        sender=row[2],
        service=row[3],
        correlation_id=row[4],
        case_id=row[5],
        wire=bytes(row[6]),
        digest=row[7],
        received_at=when(row[8]),
        expires_at=when(row[9]),
        state=InboxState(row[10]),
        attempts=row[11],
        next_attempt_at=None if row[12] is None else when(row[12]),
        receipt_wire=None if row[13] is None else bytes(row[13]),
    )


def audit_record(row: Sequence[Any], when: TimeDecoder) -> AuditRecord:
    """An AuditRecord from a row in ``AUDIT_COLUMNS`` order."""
    return AuditRecord(
        seq=row[0],
        at=when(row[1]),
        party=row[2],
        event=AuditEvent(
            event=row[3],
            message_id=row[4],
            correlation_id=row[5],
            case_id=row[6],
            service=row[7],
            kind=row[8],
            digest=row[9],
            detail=json.loads(row[10]),
        ),
        prev_hash=row[11],
        hash=row[12],
    )


def identity(value: Any) -> Any:
    """Times the driver takes and returns as aware datetimes already (asyncpg)."""
    return value
