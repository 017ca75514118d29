"""The ingest decision, shared by both central stores: which records are new, what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from exchange.audit.central.base import Finding
from exchange.ledger.chain import GENESIS_HASH, record_hash
from exchange.ledger.event import AuditRecord


@dataclass(slots=True)
class Plan:
    """Records to append after the head, earlier ones to fill in, findings, the new head."""

    fresh: list[AuditRecord] = field(default_factory=list)
    late: list[AuditRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    head: tuple[int, str] | None = None


def plan_ingest(
    party: str, head: tuple[int, str] | None, records: Sequence[AuditRecord], at: datetime
) -> Plan:
    """Check ``records`` against the party's head as they arrive.

    A record past the head must be the next seq and link to it: a jump is a gap (records
    the collector never got), a link or hash that does not hold is a broken chain. Records
    at or before the head are redeliveries (or late gap fillers): the store keeps them only
    if it does not have them yet.
    """
    plan = Plan(head=head)
    seen: set[int] = set()
    for record in sorted(records, key=lambda r: r.seq):
        if record.seq in seen:
            continue
        seen.add(record.seq)
        top_seq, top_hash = plan.head or (0, GENESIS_HASH)
        if record.seq <= top_seq:
            plan.late.append(record)
            continue
        if record.seq > top_seq + 1:
            plan.findings.append(
                Finding(
                    party,
                    top_seq + 1,
                    "gap",
                    f"records {top_seq + 1}..{record.seq - 1} of {party} never arrived",
                    at,
                )
            )
        elif record.prev_hash != top_hash:
            plan.findings.append(
                Finding(party, record.seq, "broken", "does not link to its predecessor", at)
            )
        if record_hash(record) != record.hash:
            plan.findings.append(
                Finding(party, record.seq, "broken", "content does not match its hash", at)
            )
        plan.fresh.append(record)
        plan.head = (record.seq, record.hash)
    return plan
