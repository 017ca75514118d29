"""The central audit store's interface: every party's chain, as the collector received it.

SQLite and PostgreSQL implement it; ``ingest`` checks each chain on arrival (see
``_plan``), ignores redelivered records and records what does not hold as findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from exchange.audit.batch import Batch
from exchange.ledger.event import AuditEvent, AuditRecord


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the collector noticed about a party's chain on arrival."""

    party: str
    seq: int
    kind: str  # gap, broken, checkpoint-invalid, audit-conflict, or a refused batch's code
    detail: str
    found_at: datetime


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """What support searches the central log by; every field that is set must match.

    ``message_id`` matches a record's own message id or its correlation id, so a request
    is found with its receipts and answers.
    """

    message_id: str | None = None
    case_id: str | None = None
    party: str | None = None
    service: str | None = None
    events: tuple[str, ...] = ()  # any of these event names
    since: datetime | None = None  # at or after
    until: datetime | None = None  # at or before


@dataclass(slots=True)
class IngestOutcome:
    """What one batch did to the central store."""

    stored: int = 0
    duplicates: int = 0
    findings: list[Finding] = field(default_factory=list)


def conflict_finding(record: AuditRecord, at: datetime) -> Finding:
    """The finding that a second, different record was offered for a stored seq."""
    return Finding(
        record.party,
        record.seq,
        "audit-conflict",
        f"a second, different record for {record.party} seq {record.seq} (hash "
        f"{record.hash[:12]}...) was kept aside; the stored one stays",
        at,
    )


class CentralStore(Protocol):
    """Where the collector keeps every party's audit records and checkpoints."""

    async def open(self) -> None:
        """Connect and create the tables if needed."""

    async def close(self) -> None:
        """Disconnect."""

    async def ingest(
        self, batch: Batch, at: datetime, rejected: Sequence[Finding] = ()
    ) -> IngestOutcome:
        """Store a batch in one transaction (checked, idempotent by (party, seq)).

        A stored record is never replaced: a different record for a stored seq is kept
        aside in the conflicts (an ``audit-conflict`` finding).

        ``batch.checkpoints`` must be verified already, and ``batch.envelopes`` checked
        against the records (``exchange.audit.central.archive``): they are kept by digest (a digest
        stored already keeps its bytes). ``rejected`` are findings about the checkpoints and
        envelopes that were not accepted, stored in the same transaction.

        Raises:
            StoreUnavailable (store-unavailable): nothing was stored.
        """

    async def append(self, party: str, event: AuditEvent, at: datetime) -> AuditRecord:
        """Link ``event`` to ``party``'s chain after its head in one transaction (the
        collector's own chain of the acknowledgments it issued)."""

    async def add_findings(self, findings: Sequence[Finding]) -> None:
        """Store findings that came with no records (a refused batch)."""

    async def conflicts(self, party: str | None = None) -> Sequence[AuditRecord]:
        """Second, different records offered for stored seqs, kept as evidence."""

    async def load(self, records: Sequence[AuditRecord]) -> None:
        """Append records without checks (benchmarks and tests); moves the parties' heads."""

    async def parties(self) -> Sequence[str]:
        """Every party with records or a head, sorted."""

    async def head(self, party: str) -> tuple[int, str] | None:
        """The highest (seq, hash) the collector received from ``party``."""

    async def records(
        self, party: str, since_seq: int = 0, limit: int = 10_000
    ) -> Sequence[AuditRecord]:
        """A party's records with seq > since_seq, in seq order."""

    async def checkpoints(self, party: str) -> Sequence[bytes]:
        """A party's stored checkpoint documents, in seq order."""

    async def related(self, ids: Sequence[str]) -> Sequence[AuditRecord]:
        """Records whose message_id or correlation_id is one of ``ids``."""

    async def by_case(self, case_id: str) -> Sequence[AuditRecord]:
        """Every record of a case."""

    async def traced(self, ident: str) -> Sequence[AuditRecord]:
        """What a trace of ``ident`` shows, in one statement: the records of the case
        ``ident``, those naming ``ident`` as message or correlation id, and those naming a
        request that any of these answer (by message or correlation id)."""

    async def findings(self, party: str | None = None) -> Sequence[Finding]:
        """What was found on arrival (gaps, broken links, bad checkpoints), oldest first."""

    async def envelope(self, digest: str) -> bytes | None:
        """The archived wire bytes of the envelope with SHA-256 ``digest`` (hex), or None.

        Only bytes a verified record named and that hashed to its digest were archived;
        they are hashed again on the way out.

        Raises:
            ArchiveMismatch (archive-mismatch): the stored bytes were changed since.
        """

    async def check_writable(self) -> None:
        """Start a write and roll it back, changing nothing: what the collector's readiness
        probe asks.

        Raises:
            StoreError (store-error): not open. StoreUnavailable (store-unavailable): read-only
                or unreachable.
        """

    async def search(
        self, query: RecordQuery, *, offset: int = 0, limit: int = 50
    ) -> Sequence[AuditRecord]:
        """Records matching ``query``, newest first (then by party, seq), one page.

        Indexed by time, party, service, event, message, correlation and case id.
        """
