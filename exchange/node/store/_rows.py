"""Outbox and inbox columns and row decoding shared by the SQLite and PostgreSQL stores.

The audit table's codec is the ledger's (``exchange.ledger.codec``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from exchange.ledger.chain import canonical_time
from exchange.ledger.codec import TimeDecoder, TimeEncoder
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.store._buffer import PruneWire
from exchange.node.store.base import (
    FINISHED_INBOX,
    FINISHED_OUTBOX,
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
)

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
    # Imported here: exchange.ledger.chain imports the store's base module.

    return AuditEvent(
        EventName.CONTENT_PRUNED,
        detail={
            "older_than": canonical_time(op.older_than),
            "outbox": op.outbox,
            "inbox": op.inbox,
        },
    )


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
