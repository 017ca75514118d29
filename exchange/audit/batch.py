"""What a node ships to the collector: a batch of its audit records and signed checkpoints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from exchange.exceptions import AuditTampered
from exchange.ledger.codec import record_from_json, record_to_json
from exchange.ledger.event import AuditRecord

BATCH_VERSION = 1


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive audit records of one party (as its store holds them) and its checkpoints."""

    party: str
    records: Sequence[AuditRecord]
    checkpoints: Sequence[bytes]


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
