"""What a node ships to the collector: a batch of its audit records and signed checkpoints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exchange.audit.chain import canonical_time
from exchange.exceptions import AuditTampered
from exchange.node.store.base import AuditEvent, AuditRecord

BATCH_VERSION = 1


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive audit records of one party (as its store holds them) and its checkpoints."""

    party: str
    records: Sequence[AuditRecord]
    checkpoints: Sequence[bytes]


def record_to_json(record: AuditRecord) -> dict[str, Any]:
    """An audit record as a JSON object: every field its hash covers, plus the hash."""
    e = record.event
    return {
        "seq": record.seq,
        "at": canonical_time(record.at),
        "party": record.party,
        "event": e.event,
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
        KeyError, TypeError, ValueError: not a record document.
    """
    detail = doc["detail"]
    if not isinstance(detail, dict):
        raise TypeError("detail must be an object")
    return AuditRecord(
        seq=int(doc["seq"]),
        at=datetime.fromisoformat(doc["at"]),
        party=str(doc["party"]),
        event=AuditEvent(
            event=str(doc["event"]),
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


def encode_batch(batch: Batch) -> bytes:
    """The message body: compact JSON, UTF-8."""
    doc = {
        "version": BATCH_VERSION,
        "party": batch.party,
        "records": [record_to_json(r) for r in batch.records],
        "checkpoints": [json.loads(c) for c in batch.checkpoints],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def decode_batch(body: bytes) -> Batch:
    """Read a message body.

    Raises:
        AuditTampered (audit-tampered): not a batch, or a record of another party inside.
    """
    try:
        doc = json.loads(body)
        party = str(doc["party"])
        records = [record_from_json(r) for r in doc["records"]]
        checkpoints = [
            json.dumps(c, sort_keys=True, separators=(",", ":")).encode()
            for c in doc["checkpoints"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditTampered(f"not an audit batch: {exc!r}") from None
    if doc.get("version") != BATCH_VERSION:
        raise AuditTampered(f"audit batch version {doc.get('version')!r} is not supported")
    for record in records:
        if record.party != party:
            raise AuditTampered(
                f"a batch of {party} holds a record of {record.party}", seq=record.seq
            )
    return Batch(party, records, checkpoints)
