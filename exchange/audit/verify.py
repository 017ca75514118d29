"""Walking a party's chain and checkpoints: every problem located at its seq.

Works on any source of records in seq order: the central store (``audit verify``) or a
party's own store. Deleted, inserted, edited, reordered records break a link or a hash;
a chain cut short ends before the head the collector received or before a checkpoint; a
forged checkpoint fails its signature, its certificate or its match with the record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from exchange.audit.ack import HeadAck
from exchange.audit.central.base import CentralStore
from exchange.audit.checkpoint import Checkpoint, parse_checkpoint, verify_checkpoint
from exchange.exceptions import AuditConflict, AuditMissing, AuditTampered, CheckpointInvalid
from exchange.ledger.chain import GENESIS_HASH, record_hash
from exchange.ledger.event import AuditRecord, EventName
from exchange.pki.trust import TrustStore

Fetch = Callable[[int, int], Awaitable[Sequence[AuditRecord]]]
"""``fetch(since_seq, limit)``: the next page of a party's records, in seq order."""

PAGE = 20_000
MAX_PROBLEMS = 100


@dataclass(slots=True)
class PartyReport:
    """The outcome of walking one party's chain."""

    party: str
    records: int = 0
    last_seq: int = 0
    checkpoints: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # never received (first, last)
    problems: list[AuditTampered] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was tampered with (known gaps are reported, not tampering)."""
        return not self.problems

    @property
    def first_problem(self) -> AuditTampered | None:
        """The problem at the lowest seq: the first bad record."""
        return min(self.problems, key=_seq_of) if self.problems else None


def _seq_of(problem: AuditTampered) -> int:
    seq = problem.data.get("seq", 0)
    return seq if isinstance(seq, int) else 0


async def verify_party(
    party: str,
    fetch: Fetch,
    checkpoint_docs: Sequence[bytes],
    trust: TrustStore | None,
    *,
    head: tuple[int, str] | None = None,
    known_gaps: Collection[int] = (),
    conflicts: Sequence[AuditRecord] = (),
    acknowledged: int = 0,
    page: int = PAGE,
) -> PartyReport:
    """Walk a party's chain from seq 1; collect every problem (up to 100), each with its seq.

    ``head`` is the highest (seq, hash) the collector received; ``known_gaps`` the first
    seqs of gaps it recorded on arrival (reported as gaps, not as deletions); ``conflicts``
    the second, different records the collector kept aside (each an attempt to rewrite a
    stored seq); ``acknowledged`` the highest seq the collector acknowledged (the chain
    must reach it). Without a ``trust`` store the checkpoints' signatures are not checked,
    only their match.
    """
    report = PartyReport(party)
    for record in conflicts:
        report.problems.append(
            AuditConflict(
                f"{party} seq {record.seq}: a second, different record was offered "
                f"(hash {record.hash[:12]}...) and kept aside as evidence",
                seq=record.seq,
                party=party,
            )
        )
    checkpoints = _checkpoints(party, checkpoint_docs, trust, report)
    expected, prev, since = 1, GENESIS_HASH, 0
    while len(report.problems) < MAX_PROBLEMS:
        records = await fetch(since, page)
        if not records:
            break
        for record in records:
            if record.seq != expected:
                if expected in known_gaps:
                    report.gaps.append((expected, record.seq - 1))
                    prev = record.prev_hash  # nothing to link to across a gap
                else:
                    _problem(report, expected, f"records {expected}..{record.seq - 1} are missing")
            if record.prev_hash != prev:
                _problem(report, record.seq, "does not link to its predecessor")
            if record_hash(record) != record.hash:
                _problem(report, record.seq, "its content does not match its hash")
            if head is not None and record.seq == head[0] and record.hash != head[1]:
                _problem(report, record.seq, "differs from the head the collector received")
            checkpoint = checkpoints.get(record.seq)
            if checkpoint is not None and checkpoint.hash != record.hash:
                report.problems.append(
                    CheckpointInvalid(
                        f"{party} seq {record.seq}: differs from the record its checkpoint signed",
                        seq=record.seq,
                        party=party,
                    )
                )
            report.records += 1
            expected, prev = record.seq + 1, record.hash
        since = records[-1].seq
    report.last_seq = expected - 1
    last_signed = max(checkpoints, default=0)
    top = max(last_signed, head[0] if head else 0, acknowledged)
    if top > report.last_seq:
        _problem(report, report.last_seq + 1, f"the chain is cut short: it ends before seq {top}")
    return report


def check_central_head(
    report: PartyReport,
    ack: HeadAck | None,
    party_head: tuple[int, str] | None,
    collector: str,
    collector_head: tuple[int, str] | None,
) -> None:
    """A party's witness against the central log, from the newest acknowledgment it holds:
    the central log must hold the party's chain up to the acknowledged seq, and the
    collector's chain up to the record of that acknowledgment. A central tail (or a whole
    party) deleted together with the collector's chain of acknowledgments shows here."""
    if ack is None:
        return
    central_seq = party_head[0] if party_head else 0
    if ack.seq > central_seq:
        report.problems.append(
            AuditMissing(
                f"{report.party} seq {central_seq + 1}: the central log ends at seq "
                f"{central_seq}, but the collector acknowledged seq {ack.seq} to "
                f"{report.party}: the central log's tail was cut",
                seq=central_seq + 1,
                party=report.party,
            )
        )
    collector_seq = collector_head[0] if collector_head else 0
    if ack.collector_seq > collector_seq:
        report.problems.append(
            AuditMissing(
                f"{collector} seq {collector_seq + 1}: the collector's chain in the central "
                f"log ends at seq {collector_seq}, but its acknowledgment to {report.party} "
                f"is record {ack.collector_seq} of it: the collector's chain was cut",
                seq=collector_seq + 1,
                party=collector,
            )
        )


async def verify_central(
    store: CentralStore,
    trust: TrustStore | None,
    departments: Sequence[str],
    collector: str,
    party: str | None = None,
) -> list[PartyReport]:
    """Walk every chain of the central log (or only ``party``'s), cross-checked with the
    catalog's ``departments`` and the acknowledgments in the ``collector``'s own chain.

    A department with no records at all, or a chain ending before a head the collector
    acknowledged, is reported with the party and the first missing seq.
    """
    acked = await acknowledged_heads(store, collector)
    if party is not None:
        names = [party]
    else:
        names = sorted({*await store.parties(), *departments, *acked})
    reports = []
    for name in names:
        report = await verify_central_party(store, name, trust, acknowledged=acked.get(name, 0))
        if report.records == 0 and name in departments and report.ok:
            report.problems.append(
                AuditMissing(
                    f"{name} seq 1: the catalog lists {name}, but the log holds no record of it",
                    seq=1,
                    party=name,
                )
            )
        reports.append(report)
    return reports


async def acknowledged_heads(store: CentralStore, collector: str) -> dict[str, int]:
    """The highest seq the collector acknowledged per party, from its own chain."""
    heads: dict[str, int] = {}
    since = 0
    while records := await store.records(collector, since, PAGE):
        for record in records:
            if record.event.event is EventName.HEAD_ACKNOWLEDGED:
                party, seq = record.event.detail.get("party"), record.event.detail.get("seq")
                if isinstance(party, str) and isinstance(seq, int):
                    heads[party] = max(heads.get(party, 0), seq)
        since = records[-1].seq
    return heads


async def verify_central_party(
    store: CentralStore,
    party: str,
    trust: TrustStore | None,
    *,
    acknowledged: int = 0,
    page: int = PAGE,
) -> PartyReport:
    """Walk ``party``'s chain as the central store holds it, with all the store knows of it:
    its head, its checkpoints, the gaps and the conflicts found on arrival."""
    gaps = {f.seq for f in await store.findings(party) if f.kind == "gap"}

    async def fetch(since: int, limit: int) -> Sequence[AuditRecord]:
        return await store.records(party, since, limit)

    return await verify_party(
        party,
        fetch,
        await store.checkpoints(party),
        trust,
        head=await store.head(party),
        known_gaps=gaps,
        conflicts=await store.conflicts(party),
        acknowledged=acknowledged,
        page=page,
    )


def _checkpoints(
    party: str, docs: Sequence[bytes], trust: TrustStore | None, report: PartyReport
) -> dict[int, Checkpoint]:
    """The checkpoints that verify, by seq; the rest become problems."""
    good: dict[int, Checkpoint] = {}
    for doc in docs:
        try:
            checkpoint = parse_checkpoint(doc)
            if trust is not None:
                verify_checkpoint(checkpoint, trust, party)
            elif checkpoint.party != party:
                raise CheckpointInvalid(
                    f"checkpoint at seq {checkpoint.seq} names {checkpoint.party}",
                    seq=checkpoint.seq,
                )
        except CheckpointInvalid as exc:
            report.problems.append(exc)
            continue
        good[checkpoint.seq] = checkpoint
    report.checkpoints = len(good)
    return good


def _problem(report: PartyReport, seq: int, what: str) -> None:
    report.problems.append(
        AuditTampered(f"{report.party} seq {seq}: {what}", seq=seq, party=report.party)
    )
