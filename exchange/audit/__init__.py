"""The audit log: a hash chain per party that a verifier checks offline."""

from __future__ import annotations

from exchange.audit.chain import (
    GENESIS_HASH,
    canonical_bytes,
    canonical_time,
    chain_hash,
    link,
    record_hash,
    verify_chain,
)

__all__ = [
    "GENESIS_HASH",
    "canonical_bytes",
    "canonical_time",
    "chain_hash",
    "link",
    "record_hash",
    "verify_chain",
]
