"""What every central audit store must show; each backend subclasses CentralContract."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from exchange.audit.batch import Batch
from exchange.audit.central import CentralStore, Finding, RecordQuery
from exchange.audit.checkpoint import make_checkpoint, parse_checkpoint
from exchange.audit.trace import trace
from exchange.audit.verify import PartyReport, verify_central, verify_central_party
from exchange.ledger.chain import GENESIS_HASH, link
from exchange.ledger.event import AuditEvent, AuditRecord, EventName
from exchange.pki.trust import TrustStore
from exchange.testing import ThrowawayPKI

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PARTY = "improvement"


def chain(n: int, party: str = PARTY, start: datetime = T0) -> list[AuditRecord]:
    """A valid chain of ``n`` records of ``party``, one second apart."""
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        event = AuditEvent(EventName.STATUS_SENT, message_id=f"{party}-m{seq}", detail={"i": seq})
        records.append(link(seq, start + timedelta(seconds=seq), party, event, prev))
        prev = records[-1].hash
    return records


class Tamper(Protocol):
    """Direct writes to a central store's tables, as an attacker with database access."""

    async def set_column(self, party: str, seq: int, column: str, value: Any) -> None:
        """Overwrite one column of one record."""

    async def delete(self, party: str, seq: int) -> None:
        """Remove records of ``party`` with seq >= ``seq`` (only ``seq`` unless ``to_end``)."""

    async def delete_from(self, party: str, seq: int) -> None:
        """Remove every record of ``party`` from ``seq`` on."""

    async def insert(self, record: AuditRecord) -> None:
        """Add a record as it is."""

    async def renumber(self, party: str, old: int, new: int) -> None:
        """Change a record's seq label."""

    async def replace_checkpoint(self, party: str, seq: int, body: bytes) -> None:
        """Overwrite a stored checkpoint document."""

    async def cut(self, party: str, seq: int) -> None:
        """Remove the party's records and checkpoints from ``seq`` on, and its head row."""


class CentralContract:
    """Abstract: subclasses provide ``central`` (an open store) and ``tamper``."""

    @pytest.fixture
    async def central(self) -> CentralStore:
        """Overridden by each backend."""
        raise NotImplementedError

    @pytest.fixture
    def tamper(self, central: CentralStore) -> Tamper:
        """Overridden by each backend."""
        raise NotImplementedError

    async def _filled(
        self, central: CentralStore, pki: ThrowawayPKI, n: int = 30, every: int = 10
    ) -> list[AuditRecord]:
        records = chain(n)
        credentials = pki.credentials(PARTY)
        checkpoints = [
            make_checkpoint(credentials, r.seq, r.hash, r.at + timedelta(milliseconds=1)).dumps()
            for r in records
            if r.seq % every == 0
        ]
        outcome = await central.ingest(Batch(PARTY, records, checkpoints), T0)
        assert outcome.stored == n
        assert outcome.findings == []
        return records

    async def _verify(self, central: CentralStore, trust: TrustStore) -> PartyReport:
        # several pages even for a short chain
        return await verify_central_party(central, PARTY, trust, page=7)

    async def _first_bad(self, central: CentralStore, trust: TrustStore) -> tuple[str, int]:
        report = await self._verify(central, trust)
        problem = report.first_problem
        assert problem is not None, "the tampering went unnoticed"
        seq = problem.data["seq"]
        assert isinstance(seq, int)
        return problem.code, seq

    async def test_check_writable_changes_nothing(
        self, central: CentralStore, pki: ThrowawayPKI
    ) -> None:
        """The readiness probe's write check passes on an open store and leaves it as it was."""
        records = await self._filled(central, pki, n=3, every=3)
        await central.check_writable()
        assert await central.head(PARTY) == (records[-1].seq, records[-1].hash)
        assert list(await central.records(PARTY)) == records

    # --- arrival -------------------------------------------------------------------------

    async def test_ingest_and_read_back(self, central: CentralStore, pki: ThrowawayPKI) -> None:
        """A batch is stored as sent; head, parties and checkpoints follow it."""
        records = await self._filled(central, pki)
        assert list(await central.records(PARTY)) == records
        assert await central.head(PARTY) == (30, records[-1].hash)
        assert list(await central.parties()) == [PARTY]
        assert [parse_checkpoint(c).seq for c in await central.checkpoints(PARTY)] == [10, 20, 30]

    async def test_redelivery_is_ignored(self, central: CentralStore, pki: ThrowawayPKI) -> None:
        """The same batch again (a redelivery) stores nothing and reports nothing."""
        records = await self._filled(central, pki)
        outcome = await central.ingest(Batch(PARTY, records[5:15], []), T0)
        assert (outcome.stored, outcome.duplicates, outcome.findings) == (0, 10, [])
        assert len(await central.records(PARTY)) == 30

    async def test_gap_is_found_and_later_filled(self, central: CentralStore) -> None:
        """A seq jump is recorded as a gap; the missing records may still arrive later."""
        records = chain(10)
        await central.ingest(Batch(PARTY, records[:4], []), T0)
        outcome = await central.ingest(Batch(PARTY, records[6:], []), T0)
        assert [(f.kind, f.seq) for f in outcome.findings] == [("gap", 5)]
        assert [(f.kind, f.seq) for f in await central.findings()] == [("gap", 5)]
        late = await central.ingest(Batch(PARTY, records[4:6], []), T0)
        assert (late.stored, late.findings) == (2, [])
        assert list(await central.records(PARTY)) == records

    async def test_unfilled_gap_is_reported_not_tampering(
        self, central: CentralStore, trust: TrustStore
    ) -> None:
        """verify reports a gap the collector recorded as a gap, not as a deletion."""
        records = chain(10)
        await central.ingest(Batch(PARTY, records[:4], []), T0)
        await central.ingest(Batch(PARTY, records[6:], []), T0)
        report = await self._verify(central, trust)
        assert report.gaps == [(5, 6)]
        assert report.ok

    async def test_broken_link_on_arrival(self, central: CentralStore) -> None:
        """A record that does not continue the stored chain is a finding at its seq."""
        records = chain(6)
        await central.ingest(Batch(PARTY, records[:3], []), T0)
        forged = replace(records[3], event=replace(records[3].event, detail={"i": 99}))
        outcome = await central.ingest(Batch(PARTY, [forged, *records[4:]], []), T0)
        assert [(f.kind, f.seq) for f in outcome.findings] == [("broken", 4)]

    async def test_a_stored_record_is_never_replaced(
        self, central: CentralStore, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """Other records for stored seqs are kept aside as conflicts and reported by verify."""
        records = await self._filled(central, pki)
        rewritten = chain(30, start=T0 + timedelta(hours=1))[4:7]
        outcome = await central.ingest(Batch(PARTY, rewritten, []), T0)
        conflicts = [("audit-conflict", seq) for seq in (5, 6, 7)]
        assert [(f.kind, f.seq) for f in outcome.findings] == conflicts
        assert list(await central.records(PARTY)) == records
        assert list(await central.conflicts(PARTY)) == rewritten
        assert list(await central.conflicts()) == rewritten
        again = await central.ingest(Batch(PARTY, rewritten, []), T0)  # a redelivery of it
        assert again.findings == []
        assert len(await central.conflicts(PARTY)) == 3
        assert [(f.kind, f.seq) for f in await central.findings(PARTY)] == conflicts
        assert await self._first_bad(central, trust) == ("audit-conflict", 5)

    async def test_append_links_after_the_head(self, central: CentralStore) -> None:
        """The collector's own chain: each appended event links to the one before."""
        events = [
            AuditEvent(EventName.HEAD_ACKNOWLEDGED, detail={"party": PARTY, "seq": n})
            for n in (1, 2)
        ]
        first = await central.append("collector", events[0], T0)
        second = await central.append("collector", events[1], T0 + timedelta(seconds=1))
        assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
        assert (second.seq, second.prev_hash) == (2, first.hash)
        assert list(await central.records("collector")) == [first, second]
        assert await central.head("collector") == (2, second.hash)

    async def test_findings_of_refused_batches(self, central: CentralStore) -> None:
        """A refused batch leaves a finding with its code, though no record was stored."""
        finding = Finding(PARTY, 0, "signature-invalid", "unsigned", T0)
        await central.add_findings([finding])
        assert list(await central.findings(PARTY)) == [finding]
        assert list(await central.parties()) == []

    async def test_intact_chain_verifies(
        self, central: CentralStore, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """An untouched chain with its checkpoints verifies."""
        await self._filled(central, pki)
        report = await self._verify(central, trust)
        assert report.ok, report.problems
        assert (report.records, report.last_seq, report.checkpoints) == (30, 30, 3)

    # --- tampering, each found at its place -----------------------------------------------

    async def test_edited_record(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """Editing a record's field is found at that record."""
        await self._filled(central, pki)
        await tamper.set_column(PARTY, 13, "event", "rejected")
        assert await self._first_bad(central, trust) == ("audit-tampered", 13)

    async def test_edited_and_rehashed_chain(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """A forger who recomputes every hash after an edit is caught by the signed checkpoint."""
        records = await self._filled(central, pki)
        forged = chain(30)
        edited = replace(forged[12].event, event=EventName.REJECTED)
        prev = forged[11].hash
        for record in records[12:]:
            event = edited if record.seq == 13 else record.event
            new = link(record.seq, record.at, PARTY, event, prev)
            for column, value in (("event", new.event.event), ("prev_hash", new.prev_hash)):
                await tamper.set_column(PARTY, record.seq, column, value)
            await tamper.set_column(PARTY, record.seq, "hash", new.hash)
            prev = new.hash
        assert await self._first_bad(central, trust) == ("checkpoint-invalid", 20)

    async def test_deleted_record(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """Deleting a record is found at the missing seq."""
        await self._filled(central, pki)
        await tamper.delete(PARTY, 17)
        assert await self._first_bad(central, trust) == ("audit-tampered", 17)

    async def test_inserted_record(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """A record slipped in (later ones renumbered) breaks the chain right after it."""
        records = await self._filled(central, pki)
        for seq in range(30, 21, -1):
            await tamper.renumber(PARTY, seq, seq + 1)
        inserted = link(
            22, records[20].at, PARTY, AuditEvent(EventName.RESPONDED), records[20].hash
        )
        await tamper.insert(inserted)
        # The insert links properly to 21, so the first record that no longer holds is the
        # original 22 (now labelled 23): it does not link to the inserted one.
        assert await self._first_bad(central, trust) == ("audit-tampered", 23)

    async def test_reordered_records(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """Swapping two records' places is found at the first of them."""
        await self._filled(central, pki)
        await tamper.renumber(PARTY, 8, 1000)
        await tamper.renumber(PARTY, 9, 8)
        await tamper.renumber(PARTY, 1000, 9)
        assert await self._first_bad(central, trust) == ("audit-tampered", 8)

    async def test_truncated_chain(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """Cutting off the end of the chain is found where it now ends."""
        await self._filled(central, pki)
        await tamper.delete_from(PARTY, 26)
        assert await self._first_bad(central, trust) == ("audit-tampered", 26)

    # --- deletions witnessed by the catalog and the collector's acknowledgments -------------

    async def _first_missing(self, central: CentralStore, trust: TrustStore) -> tuple[str, int]:
        reports = await verify_central(central, trust, [PARTY, "single-center"], "collector")
        by_party = {r.party: r for r in reports}
        assert all(r.ok for r in reports if r.party != PARTY), reports
        problem = by_party[PARTY].first_problem
        assert problem is not None, "the deletion went unnoticed"
        assert PARTY in problem.message
        seq = problem.data["seq"]
        assert isinstance(seq, int)
        return problem.code, seq

    async def _acknowledged(self, central: CentralStore, head: AuditRecord) -> None:
        detail = {"party": head.party, "seq": head.seq, "hash": head.hash}
        await central.append(
            "collector", AuditEvent(EventName.HEAD_ACKNOWLEDGED, detail=detail), T0
        )

    async def test_a_whole_party_deleted(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """Rows, head and checkpoints of a party gone: the catalog still lists it."""
        await self._filled(central, pki)
        await central.ingest(Batch("single-center", chain(3, "single-center"), []), T0)
        await tamper.cut(PARTY, 1)
        assert await self._first_missing(central, trust) == ("audit-missing", 1)

    async def test_a_whole_party_deleted_after_acknowledgment(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """The collector's own chain says how far the deleted party had come."""
        records = await self._filled(central, pki)
        await self._acknowledged(central, records[-1])
        await tamper.cut(PARTY, 1)
        reports = await verify_central(central, trust, [], "collector")
        [report] = [r for r in reports if r.party == PARTY]
        assert report.first_problem is not None
        assert report.first_problem.data["seq"] == 1
        assert "ends before seq 30" in report.first_problem.message

    async def test_tail_after_the_last_checkpoint_deleted_with_its_head(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """The tail past the last checkpoint and the head row gone: the acknowledgment shows it."""
        records = await self._filled(central, pki, n=35)
        await self._acknowledged(central, records[-1])
        await tamper.cut(PARTY, 33)
        await central.ingest(Batch("single-center", chain(3, "single-center"), []), T0)
        assert await self._first_missing(central, trust) == ("audit-tampered", 33)

    async def test_forged_checkpoint(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """A checkpoint signed by another party's key is found at its seq."""
        records = await self._filled(central, pki)
        other = pki.credentials("single-center")
        forged = make_checkpoint(other, 20, records[19].hash, records[19].at)
        body = replace(forged, party=PARTY).dumps()
        await tamper.replace_checkpoint(PARTY, 20, body)
        assert await self._first_bad(central, trust) == ("checkpoint-invalid", 20)

    async def test_checkpoint_with_a_bad_signature(
        self, central: CentralStore, tamper: Tamper, pki: ThrowawayPKI, trust: TrustStore
    ) -> None:
        """A checkpoint whose hash was changed after signing is found at its seq."""
        await self._filled(central, pki)
        stored = parse_checkpoint((await central.checkpoints(PARTY))[0])
        await tamper.replace_checkpoint(PARTY, 10, replace(stored, hash="f" * 64).dumps())
        assert await self._first_bad(central, trust) == ("checkpoint-invalid", 10)

    # --- trace --------------------------------------------------------------------------

    async def test_trace_of_a_case_across_three_parties(self, central: CentralStore) -> None:
        """Every step of a case that crossed three parties comes back, in order, with waits."""
        steps = await _ingest_three_party_case(central)
        noise = chain(50, "land-property", T0 + timedelta(days=1))
        await central.load([replace(r, seq=r.seq + 100) for r in noise])
        timeline = await trace(central, "CASE-1", T0 + timedelta(hours=1))
        assert [(r.party, r.event.event) for r in timeline.steps] == [
            (p, e.event) for _, p, e in steps
        ]
        by_request = await trace(central, "req-2", T0 + timedelta(hours=1))
        assert {r.event.message_id for r in by_request.steps} == {
            "req-2", "rcpt-2", "resp-2", "stat-2"
        }  # fmt: skip
        waits = {w.party: w.seconds for w in timeline.waits}
        assert waits == {"improvement": 50 * 60.0, "land-property": 10 * 60.0}

    async def test_traced_follows_requests_past_the_case_id(self, central: CentralStore) -> None:
        """A record that names a request of the case but carries no case id (an answer with
        none, say) is in the case's trace; one naming another case's request is not."""
        await _ingest_three_party_case(central)
        stray = AuditEvent(EventName.LATE_ANSWER, "late-9", "req-2", None, None, "response")
        other = AuditEvent(EventName.LATE_ANSWER, "late-10", "req-elsewhere", None, None, "fault")
        first = link(1, T0 + timedelta(hours=2), "architecture", stray, GENESIS_HASH)
        await central.load([first, link(2, first.at, "architecture", other, first.hash)])
        traced = {r.event.message_id for r in await central.traced("CASE-1")}
        assert "late-9" in traced
        assert "late-10" not in traced
        by_id = {r.event.message_id for r in await central.traced("late-9")}
        assert by_id == {"late-9", "req-2", "rcpt-2", "resp-2", "stat-2"}

    # --- search (the console) -----------------------------------------------------------

    async def test_search_filters_and_pages_newest_first(self, central: CentralStore) -> None:
        """Each filter narrows the result; pages follow one another without overlap."""
        steps = await _ingest_three_party_case(central)

        def keys(records: Any) -> list[tuple[str, str | None]]:
            return [(r.party, r.event.message_id) for r in records]

        everything = await central.search(RecordQuery(), limit=100)
        assert [r.at for r in everything] == sorted((at for at, _, _ in steps), reverse=True)
        by_id = await central.search(RecordQuery(message_id="req-2"))
        assert {r.event.message_id for r in by_id} == {"req-2", "rcpt-2", "stat-2", "resp-2"}
        received = RecordQuery(party="land-property", events=("received", "created"))
        assert keys(await central.search(received)) == [("land-property", "req-2")]
        assert keys(
            await central.search(RecordQuery(service="land-plot-info", events=("responded",)))
        ) == [("land-property", "resp-2")]
        window = RecordQuery(
            case_id="CASE-1", since=T0 + timedelta(minutes=20), until=T0 + timedelta(minutes=22)
        )
        assert keys(await central.search(window)) == [
            ("improvement", "rcpt-2"), ("land-property", "rcpt-2"), ("land-property", "req-2")
        ]  # fmt: skip
        first = await central.search(RecordQuery(case_id="CASE-1"), limit=5)
        second = await central.search(RecordQuery(case_id="CASE-1"), offset=5, limit=5)
        assert keys(first) + keys(second) == keys(everything)[:10]
        assert await central.search(RecordQuery(case_id="CASE-2")) == []


async def _ingest_three_party_case(
    central: CentralStore,
) -> list[tuple[datetime, str, AuditEvent]]:
    """Each party's chain of ``_three_party_case`` ingested; returns the steps."""
    steps = _three_party_case()
    for party in ("single-center", "improvement", "land-property"):
        prev, mine = GENESIS_HASH, []
        for seq, (at, p, event) in enumerate((s for s in steps if s[1] == party), 1):
            mine.append(link(seq, at, p, event, prev))
            prev = mine[-1].hash
        await central.ingest(Batch(party, mine, []), T0)
    return steps


def _three_party_case() -> list[tuple[datetime, str, AuditEvent]]:
    """single-center asks improvement, which asks land-property before it answers."""

    def step(minute: int, party: str, event: str, mid: str, corr: str | None, kind: str) -> Any:
        service = "land-plot-info" if mid.endswith("-2") else "tree-felling-permit"
        return (
            T0 + timedelta(minutes=minute),
            party,
            AuditEvent(EventName(event), mid, corr, "CASE-1", service, kind),
        )

    sc, im, lp = "single-center", "improvement", "land-property"
    return [
        step(0, sc, "created", "req-1", None, "request"),
        step(1, sc, "confirmed", "req-1", None, "request"),
        step(2, im, "received", "req-1", None, "request"),
        step(3, im, "receipt-sent", "rcpt-1", "req-1", "receipt"),
        step(4, sc, "receipt-received", "rcpt-1", "req-1", "receipt"),
        step(10, im, "created", "req-2", None, "request"),
        step(20, lp, "received", "req-2", None, "request"),
        step(21, lp, "receipt-sent", "rcpt-2", "req-2", "receipt"),
        step(22, im, "receipt-received", "rcpt-2", "req-2", "receipt"),
        step(25, lp, "status-sent", "stat-2", "req-2", "status"),
        step(30, lp, "responded", "resp-2", "req-2", "response"),
        step(31, im, "response-received", "resp-2", "req-2", "response"),
        step(52, im, "responded", "resp-1", "req-1", "response"),
        step(53, sc, "response-received", "resp-1", "req-1", "response"),
    ]
