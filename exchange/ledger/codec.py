"""Audit records to and from what stores and batches hold: table rows and JSON documents.

Party stores and the central log keep the same columns; a batch carries the same fields as
JSON. The detail is always kept as the canonical JSON text its hash covers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from exchange.ledger.chain import Linker, canonical_detail, canonical_time
from exchange.ledger.event import AuditEvent, AuditRecord, EventName

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
TimeDecoder = Callable[[Any], datetime]
"""Turns a stored time (ISO text in SQLite, a datetime from asyncpg) into an aware datetime."""


def time_text(value: datetime | None) -> str | None:
    """Times go into SQLite as fixed-width UTC ISO text, so text order is time order."""
    return None if value is None else canonical_time(value)


def as_is(value: Any) -> Any:
    """Times the driver takes and returns as aware datetimes already (asyncpg)."""
    return value


def audit_values(record: AuditRecord, put: TimeEncoder) -> tuple[Any, ...]:
    """The record's values in ``AUDIT_COLUMNS`` order, detail as its canonical JSON text."""
    e = record.event
    return (
        record.seq,
        put(record.at),
        record.party,
        e.event.value,
        e.message_id,
        e.correlation_id,
        e.case_id,
        e.service,
        e.kind,
        e.digest,
        canonical_detail(e.detail),
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
            (seq, at, party, e.event.value, e.message_id, e.correlation_id, e.case_id,
             e.service, e.kind, e.digest, detail, head, link_hash)
        )  # fmt: skip
        head = link_hash
    return seq, head


def audit_record(row: Sequence[Any], when: TimeDecoder) -> AuditRecord:
    """An AuditRecord from a row in ``AUDIT_COLUMNS`` order.

    Raises:
        ValueError: the row names an event outside the vocabulary.
    """
    return AuditRecord(
        seq=row[0],
        at=when(row[1]),
        party=row[2],
        event=AuditEvent(
            event=EventName(row[3]),
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


def record_to_json(record: AuditRecord) -> dict[str, Any]:
    """An audit record as a JSON object: every field its hash covers, plus the hash."""
    e = record.event
    return {
        "seq": record.seq,
        "at": canonical_time(record.at),
        "party": record.party,
        "event": e.event.value,
        "message_id": e.message_id,
        "correlation_id": e.correlation_id,
        "case_id": e.case_id,
        "service": e.service,
        "kind": e.kind,
        "digest": e.digest,
        "detail": dict(e.detail),
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }


def record_from_json(doc: dict[str, Any]) -> AuditRecord:
    """The inverse of ``record_to_json`` (no check of the hash: the verifier does that).

    Raises:
        KeyError, TypeError, ValueError: not a record document, or an event outside the
            vocabulary.
    """
    detail = doc["detail"]
    if not isinstance(detail, dict):
        raise TypeError("detail must be an object")
    return AuditRecord(
        seq=int(doc["seq"]),
        at=datetime.fromisoformat(doc["at"]),
        party=str(doc["party"]),
        event=AuditEvent(
            event=EventName(doc["event"]),
            message_id=doc["message_id"],
            correlation_id=doc["correlation_id"],
            case_id=doc["case_id"],
            service=doc["service"],
            kind=doc["kind"],
            digest=doc["digest"],
            detail=detail,
        ),
        prev_hash=str(doc["prev_hash"]),
        hash=str(doc["hash"]),
    )
