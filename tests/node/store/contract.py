"""The behaviour every party store must show; each backend's tests subclass StoreContract."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

import pytest

from exchange._clock import FrozenClock
from exchange.exceptions import DuplicateMessage, StateConflict, StoreError
from exchange.ledger import GENESIS_HASH, verify_chain
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.store import (
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
    Store,
)
from exchange.node.store.base import FINISHED_INBOX, FINISHED_OUTBOX, PRUNED

PARTY = "improvement"
HOUR = timedelta(hours=1)


class StoreFactory(Protocol):
    """Makes an unopened store at this test's location (the same location every call)."""

    def __call__(self, party: str = PARTY) -> Store: ...


def outbox(
    at: datetime,
    *,
    message_id: str | None = None,
    state: OutboxState = OutboxState.PENDING,
    correlation_id: str | None = None,
    next_attempt_at: datetime | None = None,
    kind: str = "request",
) -> OutboxRecord:
    """An outgoing message created at ``at``."""
    mid = message_id or str(uuid.uuid4())
    return OutboxRecord(
        message_id=mid,
        kind=kind,
        recipient="architecture",
        service="architectural-appearance",
        correlation_id=correlation_id,
        case_id="case-1",
        wire=b"<envelope id='" + mid.encode() + b"'>\x00\xff</envelope>",
        digest="d" * 64,
        created_at=at,
        expires_at=at + timedelta(days=14),
        state=state,
        next_attempt_at=next_attempt_at,
    )


def inbox(
    at: datetime,
    *,
    message_id: str | None = None,
    state: InboxState = InboxState.RECEIVED,
    next_attempt_at: datetime | None = None,
    receipt_wire: bytes | None = None,
) -> InboxRecord:
    """A received request received at ``at``."""
    mid = message_id or str(uuid.uuid4())
    return InboxRecord(
        message_id=mid,
        kind="request",
        sender="single-center",
        service="tree-felling-permit",
        correlation_id=None,
        case_id="case-2",
        wire=b'{"id": "' + mid.encode() + b'"}',
        digest="e" * 64,
        received_at=at,
        expires_at=at + timedelta(days=14),
        state=state,
        next_attempt_at=next_attempt_at,
        receipt_wire=receipt_wire,
    )


class StoreContract:
    """Abstract: a subclass provides ``make_store`` and inherits every test."""

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        """Overridden by each backend."""
        raise NotImplementedError

    @pytest.fixture
    async def store(self, make_store: StoreFactory) -> AsyncIterator[Store]:
        """An open, empty store for party ``improvement``."""
        store = make_store()
        await store.open()
        yield store
        await store.close()

    # --- outbox ------------------------------------------------------------------------

    async def test_head_acknowledgments(self, store: Store) -> None:
        """The collector's acknowledgments are kept durably in seq order; the first at a seq
        stays (a later one cannot rewrite what the party holds as its witness)."""
        await store.add_ack(40, b"second")
        await store.add_ack(25, b"first")
        await store.add_ack(25, b"rewritten later")
        assert list(await store.acks()) == [(25, b"first"), (40, b"second")]
        assert list(await store.acks(since_seq=25)) == [(40, b"second")]
        assert list(await store.checkpoints()) == []  # a table of its own

    async def test_outbox_round_trip(self, store: Store, clock: FrozenClock) -> None:
        """An outgoing message comes back field for field, wire bytes included."""
        record = outbox(clock.now(), correlation_id="req-1", next_attempt_at=clock.now() + HOUR)
        async with store.transaction() as tx:
            tx.add_outbox(record)
        assert await store.get_outbox(record.message_id) == record
        assert await store.get_outbox("nope") is None

    async def test_outbox_state_change(self, store: Store, clock: FrozenClock) -> None:
        """set_outbox_state moves the state and sets attempts and the next attempt time."""
        record = outbox(clock.now())
        async with store.transaction() as tx:
            tx.add_outbox(record)
        later = clock.now() + 2 * HOUR
        async with store.transaction() as tx:
            tx.set_outbox_state(
                record.message_id, OutboxState.SENT, attempts=1, next_attempt_at=later
            )
        stored = await store.get_outbox(record.message_id)
        assert stored is not None
        assert (stored.state, stored.attempts, stored.next_attempt_at) == (
            OutboxState.SENT,
            1,
            later,
        )

    async def test_state_change_keeps_unset_fields(self, store: Store, clock: FrozenClock) -> None:
        """Leaving attempts and next_attempt_at out keeps their stored values."""
        later = clock.now() + HOUR
        record = outbox(clock.now())
        async with store.transaction() as tx:
            tx.add_outbox(record)
            tx.set_outbox_state(
                record.message_id, OutboxState.SENT, attempts=3, next_attempt_at=later
            )
        async with store.transaction() as tx:
            tx.set_outbox_state(record.message_id, OutboxState.RECEIPTED)
        stored = await store.get_outbox(record.message_id)
        assert stored is not None
        assert (stored.state, stored.attempts, stored.next_attempt_at) == (
            OutboxState.RECEIPTED,
            3,
            later,
        )

    async def test_state_change_of_unknown_message(self, store: Store, clock: FrozenClock) -> None:
        """Moving a message the store does not hold raises and writes nothing of the transaction."""
        record = outbox(clock.now())

        async def move() -> None:
            async with store.transaction() as tx:
                tx.add_outbox(record)
                tx.set_inbox_state("missing", InboxState.ANSWERED)
                tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))

        with pytest.raises(StoreError) as info:
            await move()
        assert type(info.value) is StoreError
        assert info.value.data["message_id"] == "missing"
        assert await store.get_outbox(record.message_id) is None
        assert await store.audit() == []

    async def test_due_outbox(self, store: Store, clock: FrozenClock) -> None:
        """Due: PENDING or SENT whose next attempt is unset or has come; oldest first."""
        t0 = clock.now()
        now = t0 + 10 * HOUR
        records = {
            "pending-new": outbox(t0 + 5 * HOUR),
            "sent-due": outbox(t0 + 2 * HOUR, state=OutboxState.SENT, next_attempt_at=now),
            "pending-in-grace": outbox(t0, next_attempt_at=now + HOUR),
            "sent-later": outbox(t0 + HOUR, state=OutboxState.SENT, next_attempt_at=now + HOUR),
            "sent-unscheduled": outbox(t0 + HOUR, state=OutboxState.SENT),
            "receipted": outbox(t0, state=OutboxState.RECEIPTED, next_attempt_at=t0),
            "answered": outbox(t0, state=OutboxState.ANSWERED),
            "undelivered": outbox(t0, state=OutboxState.UNDELIVERED),
            "done": outbox(t0, state=OutboxState.DONE),
        }
        async with store.transaction() as tx:
            for record in records.values():
                tx.add_outbox(record)
        due = await store.due_outbox(now)
        expected = [records[k].message_id for k in ("sent-unscheduled", "sent-due", "pending-new")]
        assert [r.message_id for r in due] == expected
        assert [r.message_id for r in await store.due_outbox(now, limit=2)] == expected[:2]

    async def test_due_outbox_follows_the_schedule(self, store: Store, clock: FrozenClock) -> None:
        """A sent request becomes due exactly when its next attempt time comes."""
        retry_at = clock.now() + HOUR
        record = outbox(clock.now(), state=OutboxState.SENT, next_attempt_at=retry_at)
        async with store.transaction() as tx:
            tx.add_outbox(record)
        assert await store.due_outbox(retry_at - timedelta(microseconds=1)) == []
        assert [r.message_id for r in await store.due_outbox(retry_at)] == [record.message_id]

    async def test_outbox_answering(self, store: Store, clock: FrozenClock) -> None:
        """outbox_answering returns exactly the messages correlated to a request, oldest first."""
        t0 = clock.now()
        receipt = outbox(t0, correlation_id="req-1", kind="receipt", state=OutboxState.DONE)
        response = outbox(t0 + HOUR, correlation_id="req-1", kind="response")
        other = outbox(t0, correlation_id="req-2", kind="response")
        async with store.transaction() as tx:
            for record in (response, receipt, other, outbox(t0)):
                tx.add_outbox(record)
        answering = await store.outbox_answering("req-1")
        assert [r.message_id for r in answering] == [receipt.message_id, response.message_id]
        assert await store.outbox_answering("req-3") == []

    # --- inbox -------------------------------------------------------------------------

    async def test_inbox_round_trip(self, store: Store, clock: FrozenClock) -> None:
        """A received message comes back field for field, with its receipt's wire bytes."""
        record = inbox(clock.now(), receipt_wire=b"<receipt/>", next_attempt_at=clock.now())
        async with store.transaction() as tx:
            tx.add_inbox(record)
        assert await store.get_inbox(record.message_id) == record
        assert await store.get_inbox("nope") is None

    async def test_inbox_state_change(self, store: Store, clock: FrozenClock) -> None:
        """set_inbox_state moves the state and records the retry count and time."""
        record = inbox(clock.now())
        retry = clock.now() + HOUR
        async with store.transaction() as tx:
            tx.add_inbox(record)
        async with store.transaction() as tx:
            tx.set_inbox_state(
                record.message_id, InboxState.RECEIVED, attempts=2, next_attempt_at=retry
            )
        stored = await store.get_inbox(record.message_id)
        assert stored is not None
        assert (stored.attempts, stored.next_attempt_at) == (2, retry)

    async def test_claim_takes_due_requests(self, store: Store, clock: FrozenClock) -> None:
        """Due: RECEIVED with no retry time or one that has come, oldest first; nothing else."""
        t0 = clock.now()
        now = t0 + 10 * HOUR
        records = {
            "fresh": inbox(t0 + 3 * HOUR),
            "retry-due": inbox(t0 + HOUR, next_attempt_at=now),
            "retry-later": inbox(t0, next_attempt_at=now + HOUR),
            "oldest": inbox(t0),
            "answered": inbox(t0, state=InboxState.ANSWERED),
            "dead": inbox(t0, state=InboxState.DEAD),
            "noted": inbox(t0, state=InboxState.NOTED),
        }
        async with store.transaction() as tx:
            for record in records.values():
                tx.add_inbox(record)
        expected = [records[k].message_id for k in ("oldest", "retry-due", "fresh")]
        first = await store.claim_inbox("w", now, HOUR, limit=1)
        assert [r.message_id for r in first] == expected[:1]
        rest = await store.claim_inbox("w", now, HOUR)
        assert [r.message_id for r in rest] == expected[1:]

    async def test_inbox_by_state_and_count(self, store: Store, clock: FrozenClock) -> None:
        """inbox_by_state and count_inbox see each state separately and all together."""
        t0 = clock.now()
        dead = [inbox(t0 + i * HOUR, state=InboxState.DEAD) for i in range(3)]
        async with store.transaction() as tx:
            for record in [*reversed(dead), inbox(t0), inbox(t0, state=InboxState.ANSWERED)]:
                tx.add_inbox(record)
        assert [r.message_id for r in await store.inbox_by_state(InboxState.DEAD)] == [
            r.message_id for r in dead
        ]
        assert len(await store.inbox_by_state(InboxState.DEAD, limit=2)) == 2
        assert await store.inbox_by_state(InboxState.CANCELLED) == []
        assert await store.count_inbox() == 5
        assert await store.count_inbox(InboxState.DEAD) == 3
        assert await store.count_inbox(InboxState.EXPIRED) == 0

    async def test_count_outbox(self, store: Store, clock: FrozenClock) -> None:
        """count_outbox sees each state separately and all together (the metrics' depth)."""
        t0 = clock.now()
        async with store.transaction() as tx:
            for state in (OutboxState.PENDING, OutboxState.SENT, OutboxState.SENT):
                tx.add_outbox(outbox(t0, state=state))
            tx.add_outbox(outbox(t0, state=OutboxState.DONE, kind="receipt"))
        assert await store.count_outbox() == 4
        assert await store.count_outbox(OutboxState.SENT) == 2
        assert await store.count_outbox(OutboxState.PENDING) == 1
        assert await store.count_outbox(OutboxState.UNDELIVERED) == 0

    async def test_duplicate_writes_nothing(self, store: Store, clock: FrozenClock) -> None:
        """A duplicate message_id raises DuplicateMessage; none of that transaction is written."""
        first = inbox(clock.now())
        async with store.transaction() as tx:
            tx.add_inbox(first)
            tx.audit(AuditEvent(EventName.RECEIVED, message_id=first.message_id))
        reply = outbox(clock.now(), correlation_id=first.message_id, kind="receipt")

        async def receive_again() -> None:
            async with store.transaction() as tx:
                tx.add_outbox(reply)
                tx.add_inbox(inbox(clock.now(), message_id=first.message_id))
                tx.audit(AuditEvent(EventName.RECEIVED, message_id=first.message_id))

        with pytest.raises(DuplicateMessage) as info:
            await receive_again()
        assert info.value.data["message_id"] == first.message_id
        assert await store.get_outbox(reply.message_id) is None
        assert await store.count_inbox() == 1
        assert [r.seq for r in await store.audit()] == [1]

    async def test_duplicate_among_concurrent(self, store: Store, clock: FrozenClock) -> None:
        """Only the duplicate's transaction fails when it commits alongside others."""
        first = inbox(clock.now())
        async with store.transaction() as tx:
            tx.add_inbox(first)

        async def receive(record: InboxRecord) -> None:
            async with store.transaction() as tx:
                tx.add_inbox(record)
                tx.audit(AuditEvent(EventName.RECEIVED, message_id=record.message_id))

        others = [inbox(clock.now()) for _ in range(20)]
        batch = [*others[:10], inbox(clock.now(), message_id=first.message_id), *others[10:]]
        results = await asyncio.gather(*(receive(r) for r in batch), return_exceptions=True)
        assert [type(r) for r in results if r is not None] == [DuplicateMessage]
        assert await store.count_inbox() == 21
        records = await store.audit()
        assert [r.seq for r in records] == list(range(1, 21))
        assert {r.event.message_id for r in records} == {r.message_id for r in others}
        verify_chain(records)

    async def test_inbox_for(self, store: Store, clock: FrozenClock) -> None:
        """inbox_for returns exactly the received messages referring to a request, oldest first."""
        t0 = clock.now()
        receipt = replace(inbox(t0), correlation_id="req-1", kind="receipt")
        response = replace(inbox(t0 + HOUR), correlation_id="req-1", kind="response")
        async with store.transaction() as tx:
            for record in (
                response,
                receipt,
                replace(inbox(t0), correlation_id="req-2"),
                inbox(t0),
            ):
                tx.add_inbox(record)
        assert await store.inbox_for("req-1") == [receipt, response]
        assert await store.inbox_for("req-3") == []

    async def test_only_from_allows_listed_states(self, store: Store, clock: FrozenClock) -> None:
        """A state change guarded by only_from goes through when the record is in a listed state."""
        record = inbox(clock.now())
        async with store.transaction() as tx:
            tx.add_inbox(record)
        async with store.transaction() as tx:
            tx.set_inbox_state(
                record.message_id,
                InboxState.ANSWERED,
                only_from=(InboxState.RECEIVED, InboxState.WAITING),
            )
        stored = await store.get_inbox(record.message_id)
        assert stored is not None
        assert stored.state is InboxState.ANSWERED

    async def test_only_from_conflict_writes_nothing(
        self, store: Store, clock: FrozenClock
    ) -> None:
        """A record outside only_from raises StateConflict; none of that transaction is written."""
        request = outbox(clock.now(), state=OutboxState.ANSWERED)
        async with store.transaction() as tx:
            tx.add_outbox(request)
        response = outbox(clock.now(), correlation_id=request.message_id, kind="response")

        async def answer() -> None:
            async with store.transaction() as tx:
                tx.add_outbox(response)
                tx.set_outbox_state(
                    request.message_id,
                    OutboxState.ANSWERED,
                    only_from=(OutboxState.PENDING, OutboxState.SENT),
                )
                tx.audit(AuditEvent(EventName.RESPONDED, message_id=request.message_id))

        with pytest.raises(StateConflict) as info:
            await answer()
        assert info.value.data == {"message_id": request.message_id, "state": "answered"}
        assert await store.get_outbox(response.message_id) is None
        assert await store.audit() == []

    async def test_only_from_lets_one_of_racing_answers_win(
        self, store: Store, clock: FrozenClock
    ) -> None:
        """Of ten concurrent answers to one request guarded by only_from, exactly one commits."""
        request = inbox(clock.now())
        async with store.transaction() as tx:
            tx.add_inbox(request)

        async def answer(n: int) -> None:
            async with store.transaction() as tx:
                tx.add_outbox(outbox(clock.now(), correlation_id=request.message_id))
                tx.set_inbox_state(
                    request.message_id, InboxState.ANSWERED, only_from=(InboxState.RECEIVED,)
                )
                tx.audit(
                    AuditEvent(EventName.RESPONDED, message_id=request.message_id, detail={"n": n})
                )

        results = await asyncio.gather(*(answer(n) for n in range(10)), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["NoneType"] + ["StateConflict"] * 9
        assert len(await store.outbox_answering(request.message_id)) == 1
        assert [r.seq for r in await store.audit()] == [1]

    # --- transactions ------------------------------------------------------------------

    async def test_raising_block_writes_nothing(self, store: Store, clock: FrozenClock) -> None:
        """An exception inside the block propagates and drops every buffered change."""
        record = inbox(clock.now())

        async def fail() -> None:
            async with store.transaction() as tx:
                tx.add_inbox(record)
                tx.add_outbox(outbox(clock.now()))
                tx.audit(AuditEvent(EventName.RECEIVED, message_id=record.message_id))
                raise LookupError("handler failed")

        with pytest.raises(LookupError, match="handler failed"):
            await fail()
        assert await store.count_inbox() == 0
        assert await store.due_outbox(clock.now()) == []
        assert await store.audit() == []

    async def test_transaction_is_closed_after_exit(self, store: Store, clock: FrozenClock) -> None:
        """Using a transaction after its block has ended raises instead of being lost silently."""
        async with store.transaction() as tx:
            tx.add_outbox(outbox(clock.now()))
        with pytest.raises(RuntimeError, match="already ended"):
            tx.add_outbox(outbox(clock.now()))

    # --- audit -------------------------------------------------------------------------

    async def test_audit_chain(self, store: Store, clock: FrozenClock) -> None:
        """Audit events are numbered from 1, timed by the clock, chained and verifiable."""
        events = [
            AuditEvent(
                EventName.CREATED, message_id="m1", service="tree-felling-permit", kind="request"
            ),
            AuditEvent(
                EventName.CONFIRMED,
                message_id="m1",
                correlation_id="c",
                case_id="k",
                digest="f" * 64,
            ),
            AuditEvent(
                EventName.REJECTED, detail={"reason": "подпись", "codes": ["expired"], "n": 2}
            ),
        ]
        async with store.transaction() as tx:
            tx.audit(events[0])
        clock.advance(HOUR)
        async with store.transaction() as tx:
            tx.audit(events[1])
            tx.audit(events[2])
        records = await store.audit()
        assert [r.seq for r in records] == [1, 2, 3]
        assert [r.event for r in records] == events
        assert [r.at for r in records] == [clock.now() - HOUR, clock.now(), clock.now()]
        assert {r.party for r in records} == {PARTY}
        assert records[0].prev_hash == GENESIS_HASH
        assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
        verify_chain(records)

    async def test_audit_since_and_limit(self, store: Store) -> None:
        """audit(since_seq, limit) pages through the chain in seq order."""
        async with store.transaction() as tx:
            for i in range(7):
                tx.audit(AuditEvent(EventName.STATUS_SENT, detail={"i": i}))
        page = await store.audit(since_seq=2, limit=3)
        assert [r.seq for r in page] == [3, 4, 5]
        assert [r.seq for r in await store.audit(since_seq=7)] == []
        rest = await store.audit(since_seq=2)
        verify_chain(rest, start_seq=3, prev_hash=(await store.audit(since_seq=1, limit=1))[0].hash)

    async def test_audit_head(self, store: Store) -> None:
        """audit_head() is None for an empty chain, then the last record's (seq, hash)."""
        assert await store.audit_head() is None
        async with store.transaction() as tx:
            for i in range(3):
                tx.audit(AuditEvent(EventName.STATUS_SENT, detail={"i": i}))
        last = (await store.audit())[-1]
        assert await store.audit_head() == (3, last.hash)

    async def test_concurrent_transactions(self, store: Store, clock: FrozenClock) -> None:
        """200 concurrent transactions all commit and their audit seqs run 1..200 without gaps."""
        records = [outbox(clock.now()) for _ in range(200)]

        async def create(record: OutboxRecord) -> None:
            async with store.transaction() as tx:
                tx.add_outbox(record)
                tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))

        await asyncio.gather(*(create(r) for r in records))
        audit = await store.audit()
        assert [r.seq for r in audit] == list(range(1, 201))
        assert {r.event.message_id for r in audit} == {r.message_id for r in records}
        assert len(await store.due_outbox(clock.now(), limit=500)) == 200
        verify_chain(audit)

    # --- pruning message content -------------------------------------------------------

    async def test_prune_empties_only_old_finished_wire(
        self, store: Store, clock: FrozenClock
    ) -> None:
        """Old finished messages lose their wire, nothing else; open and newer ones keep it."""
        t0 = clock.now()
        cutoff = t0 + HOUR
        old_out = {s: outbox(t0, state=s) for s in OutboxState}
        old_in = {s: inbox(t0, state=s, receipt_wire=b"<receipt/>") for s in InboxState}
        young_out = outbox(cutoff, state=OutboxState.DONE)
        young_in = inbox(cutoff, state=InboxState.NOTED)
        async with store.transaction() as tx:
            for sent in [*old_out.values(), young_out]:
                tx.add_outbox(sent)
            for received in [*old_in.values(), young_in]:
                tx.add_inbox(received)
            tx.audit(AuditEvent(EventName.CREATED))

        assert await store.prune_messages(cutoff) == len(FINISHED_OUTBOX) + len(FINISHED_INBOX)

        for out_state, sent in old_out.items():
            expected = replace(sent, wire=PRUNED) if out_state in FINISHED_OUTBOX else sent
            assert await store.get_outbox(sent.message_id) == expected, out_state
        for in_state, received in old_in.items():
            kept = replace(received, wire=PRUNED) if in_state in FINISHED_INBOX else received
            assert await store.get_inbox(received.message_id) == kept, in_state
        assert await store.get_outbox(young_out.message_id) == young_out
        assert await store.get_inbox(young_in.message_id) == young_in
        records = await store.audit()
        assert [r.event.event for r in records] == ["created", "content-pruned"]
        assert records[1].event.detail == {
            "older_than": "2026-01-15T10:00:00.000000+00:00",
            "outbox": len(FINISHED_OUTBOX),
            "inbox": len(FINISHED_INBOX),
        }
        verify_chain(records)

        assert await store.prune_messages(cutoff + HOUR) == 2  # only the young ones are left
        assert await store.prune_messages(cutoff + HOUR) == 0
        assert len(await store.audit()) == 3  # a prune that empties nothing audits nothing

    async def test_wires_by_digest_in_one_read(self, store: Store, clock: FrozenClock) -> None:
        """Sent and received messages' wire bytes come keyed by digest; pruned content and
        unknown ids are left out."""
        sent = replace(outbox(clock.now()), digest="a" * 64)
        received = replace(inbox(clock.now()), digest="b" * 64)
        pruned = replace(inbox(clock.now(), state=InboxState.ANSWERED), digest="c" * 64)
        async with store.transaction() as tx:
            tx.add_outbox(sent)
            tx.add_inbox(received)
            tx.add_inbox(pruned)
        assert await store.prune_messages(clock.now() + HOUR) == 1
        ids = {sent.message_id, received.message_id, pruned.message_id, "unknown"}
        assert await store.wires(ids) == {sent.digest: sent.wire, received.digest: received.wire}
        assert await store.wires(set()) == {}

    async def test_pruned_request_still_dedupes(self, store: Store, clock: FrozenClock) -> None:
        """A request whose content was pruned is still refused as a duplicate."""
        request = inbox(clock.now(), state=InboxState.ANSWERED)
        async with store.transaction() as tx:
            tx.add_inbox(request)
        assert await store.prune_messages(clock.now() + HOUR) == 1

        async def receive_again() -> None:
            async with store.transaction() as tx:
                tx.add_inbox(inbox(clock.now(), message_id=request.message_id))
                tx.audit(AuditEvent(EventName.RECEIVED, message_id=request.message_id))

        with pytest.raises(DuplicateMessage):
            await receive_again()
        stored = await store.get_inbox(request.message_id)
        assert stored is not None
        assert (stored.wire, stored.digest) == (PRUNED, request.digest)

    async def test_prune_chosen_states(self, store: Store, clock: FrozenClock) -> None:
        """Only the states named are pruned; an empty set leaves a table alone."""
        noted = inbox(clock.now(), state=InboxState.NOTED)
        answered = inbox(clock.now(), state=InboxState.ANSWERED)
        done = outbox(clock.now(), state=OutboxState.DONE)
        async with store.transaction() as tx:
            tx.add_inbox(noted)
            tx.add_inbox(answered)
            tx.add_outbox(done)
        later = clock.now() + HOUR
        assert (
            await store.prune_messages(later, outbox_states=(), inbox_states={InboxState.NOTED})
            == 1
        )
        assert await store.get_inbox(answered.message_id) == answered
        assert await store.get_outbox(done.message_id) == done
        assert (await store.audit())[-1].event.detail["inbox"] == 1

    async def test_prune_refuses_open_states(self, store: Store, clock: FrozenClock) -> None:
        """Naming an open state raises ValueError and prunes nothing."""
        record = outbox(clock.now(), state=OutboxState.SENT)
        async with store.transaction() as tx:
            tx.add_outbox(record)
        with pytest.raises(ValueError, match="sent are not finished"):
            await store.prune_messages(
                clock.now() + HOUR, outbox_states=(OutboxState.SENT, OutboxState.DONE)
            )
        with pytest.raises(ValueError, match="received are not finished"):
            await store.prune_messages(clock.now() + HOUR, inbox_states=(InboxState.RECEIVED,))
        assert await store.get_outbox(record.message_id) == record
        assert await store.audit() == []

    async def test_prune_in_batches(self, store: Store, clock: FrozenClock) -> None:
        """A large prune commits in batches, each audited, until nothing old is left."""
        records = [outbox(clock.now(), state=OutboxState.DONE) for _ in range(1100)]
        async with store.transaction() as tx:
            for record in records:
                tx.add_outbox(record)
        assert await store.prune_messages(clock.now() + HOUR) == 1100
        audit = await store.audit()
        assert [r.event.detail["outbox"] for r in audit] == [500, 500, 100]
        assert {(await store.get_outbox(r.message_id) or r).wire for r in records[::97]} == {PRUNED}

    # --- durability and ownership ------------------------------------------------------

    async def test_reopen_keeps_everything(
        self, store: Store, make_store: StoreFactory, clock: FrozenClock
    ) -> None:
        """After close and reopen the data is there and the chain continues where it stopped."""
        sent, received = outbox(clock.now()), inbox(clock.now())
        async with store.transaction() as tx:
            tx.add_outbox(sent)
            tx.add_inbox(received)
            tx.audit(AuditEvent(EventName.CREATED, message_id=sent.message_id))
            tx.audit(AuditEvent(EventName.RECEIVED, message_id=received.message_id))
        await store.close()
        reopened = make_store()
        await reopened.open()
        try:
            assert await reopened.get_outbox(sent.message_id) == sent
            assert await reopened.get_inbox(received.message_id) == received
            async with reopened.transaction() as tx:
                tx.audit(AuditEvent(EventName.CONFIRMED, message_id=sent.message_id))
            records = await reopened.audit()
            assert [r.seq for r in records] == [1, 2, 3]
            verify_chain(records)
        finally:
            await reopened.close()

    async def test_other_party_refused(self, store: Store, make_store: StoreFactory) -> None:
        """A store already holding one party's state refuses to open for another party."""
        other = make_store(party="architecture")
        with pytest.raises(StoreError, match="belongs to party 'improvement'"):
            await other.open()
