"""The audit ledger: the event vocabulary, the hash chain and the record codec (pure, no I/O).

A leaf both ``exchange.node`` and ``exchange.audit`` import; it imports neither.
"""

from __future__ import annotations

from exchange.ledger.chain import (
    GENESIS_HASH,
    canonical_bytes,
    canonical_detail,
    canonical_time,
    chain_hash,
    link,
    record_hash,
    verify_chain,
)
from exchange.ledger.event import ANSWER_RECEIVED, AuditEvent, AuditRecord, EventName

__all__ = [
    "ANSWER_RECEIVED",
    "GENESIS_HASH",
    "AuditEvent",
    "AuditRecord",
    "EventName",
    "canonical_bytes",
    "canonical_detail",
    "canonical_time",
    "chain_hash",
    "link",
    "record_hash",
    "verify_chain",
]
