"""The audit hash chain: canonical encoding, link hashes and the verifier (pure, no I/O).

Each record's hash is SHA-256 over the canonical JSON of its seq, time, party, event fields
and the previous record's hash, so editing, removing, inserting or reordering a record
breaks the chain at that point. The first record links to ``GENESIS_HASH``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from exchange.exceptions import AuditTampered
from exchange.node.store.base import AuditEvent, AuditRecord

GENESIS_HASH = "0" * 64


def canonical_time(at: datetime) -> str:
    """The one text form of an audit time: UTC, ISO 8601, always with microseconds."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_bytes(seq: int, at: datetime, party: str, event: AuditEvent, prev_hash: str) -> bytes:
    """The exact bytes a record's hash covers (sorted keys, no whitespace, UTF-8)."""
    doc: dict[str, Any] = {
        "seq": seq,
        "at": canonical_time(at),
        "party": party,
        "event": event.event,
        "message_id": event.message_id,
        "correlation_id": event.correlation_id,
        "case_id": event.case_id,
        "service": event.service,
        "kind": event.kind,
        "digest": event.digest,
        "detail": dict(event.detail),
        "prev_hash": prev_hash,
    }
    text = json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def chain_hash(seq: int, at: datetime, party: str, event: AuditEvent, prev_hash: str) -> str:
    """The hash of a new link: SHA-256 hex over its canonical bytes."""
    return hashlib.sha256(canonical_bytes(seq, at, party, event, prev_hash)).hexdigest()


def record_hash(record: AuditRecord) -> str:
    """Recompute a stored record's hash from its fields (compare it with ``record.hash``)."""
    return chain_hash(record.seq, record.at, record.party, record.event, record.prev_hash)


def link(seq: int, at: datetime, party: str, event: AuditEvent, prev_hash: str) -> AuditRecord:
    """Number, time and chain an event: the record a store appends."""
    return AuditRecord(
        seq=seq,
        at=at,
        party=party,
        event=event,
        prev_hash=prev_hash,
        hash=chain_hash(seq, at, party, event, prev_hash),
    )


def verify_chain(
    records: Sequence[AuditRecord], *, start_seq: int = 1, prev_hash: str = GENESIS_HASH
) -> None:
    """Check that ``records`` are consecutive links starting at ``start_seq`` after ``prev_hash``.

    Pass ``start_seq`` and ``prev_hash`` of a trusted earlier record (a checkpoint) to verify
    a later stretch of the chain.

    Raises:
        AuditTampered (audit-tampered): naming in ``data["seq"]`` the first seq at which the
            chain does not hold (a gap, a reordering, a broken link or a wrong hash).
    """
    expected_seq = start_seq
    expected_prev = prev_hash
    for record in records:
        if record.seq != expected_seq:
            raise AuditTampered(
                f"audit chain broken at seq {expected_seq}: found seq {record.seq} there "
                "(a record was removed, inserted or reordered)",
                seq=expected_seq,
                found_seq=record.seq,
            )
        if record.prev_hash != expected_prev:
            raise AuditTampered(
                f"audit chain broken at seq {record.seq}: it does not link to its predecessor",
                seq=record.seq,
            )
        if record_hash(record) != record.hash:
            raise AuditTampered(
                f"audit chain broken at seq {record.seq}: its content does not match its hash",
                seq=record.seq,
            )
        expected_seq += 1
        expected_prev = record.hash
