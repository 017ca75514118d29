"""Claims every party store must show: atomic, leased, taken over, ordered per case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from exchange._clock import FrozenClock
from exchange.exceptions import DuplicateMessage, LeaseLost, StateConflict
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.store import InboxRecord, InboxState, Store

from .contract import StoreFactory, inbox, outbox

LEASE = timedelta(seconds=30)


class ClaimContract:
    """Abstract: a subclass provides ``make_store`` (see StoreContract)."""

    @pytest.fixture
    async def claims_store(self, make_store: StoreFactory) -> AsyncIterator[Store]:
        """An open, empty store."""
        store = make_store()
        await store.open()
        yield store
        await store.close()

    @pytest.fixture
    async def two_stores(self, make_store: StoreFactory) -> AsyncIterator[tuple[Store, Store]]:
        """Two open stores on one database, as two processes of a party have."""
        one, two = make_store(), make_store()
        await one.open()
        await two.open()
        yield one, two
        await one.close()
        await two.close()

    async def _received(self, store: Store, *records: InboxRecord) -> None:
        async with store.transaction() as tx:
            for record in records:
                tx.add_inbox(record)

    async def test_claim_is_exclusive(self, claims_store: Store, clock: FrozenClock) -> None:
        """A claimed request is not claimed again while its lease lasts, by anyone."""
        store = claims_store
        a, b = inbox(clock.now()), inbox(clock.now() + timedelta(seconds=1))
        await self._received(store, a, b)
        first = await store.claim_inbox("p1", clock.now(), LEASE, limit=1)
        assert [r.message_id for r in first] == [a.message_id]  # oldest first, up to limit
        assert (first[0].claim_owner, first[0].takeovers) == ("p1", 0)
        second = await store.claim_inbox("p2", clock.now(), LEASE)
        assert [r.message_id for r in second] == [b.message_id]
        assert await store.claim_inbox("p3", clock.now(), LEASE) == []

    async def test_concurrent_claims_split_the_work(
        self, two_stores: tuple[Store, Store], clock: FrozenClock
    ) -> None:
        """Two stores (as two processes) claiming at once never get the same request."""
        one, two = two_stores
        await self._received(one, *(inbox(clock.now()) for _ in range(60)))
        got: list[list[InboxRecord]] = [[], []]

        async def claim(index: int, store: Store) -> None:
            for _ in range(10):
                got[index] += await store.claim_inbox(f"p{index}", clock.now(), LEASE, 4)

        await asyncio.gather(claim(0, one), claim(1, two))
        ids = [r.message_id for r in got[0] + got[1]]
        assert len(ids) == len(set(ids)) == 60

    async def test_expired_lease_is_taken_over(
        self, claims_store: Store, clock: FrozenClock
    ) -> None:
        """Another owner takes over an expired claim, counted as a takeover; the old owner's
        commit then raises LeaseLost and writes nothing."""
        store = claims_store
        record = inbox(clock.now())
        await self._received(store, record)
        (mine,) = await store.claim_inbox("dead", clock.now(), LEASE)
        assert await store.claim_inbox("alive", clock.now() + LEASE / 2, LEASE) == []
        (taken,) = await store.claim_inbox("alive", clock.now() + LEASE, LEASE)
        assert (taken.claim_owner, taken.takeovers) == ("alive", 1)
        stale = store.transaction()
        tx = await stale.__aenter__()
        tx.set_inbox_state(record.message_id, InboxState.ANSWERED, only_from=(InboxState.RECEIVED,))
        tx.hold_claim(record.message_id, mine.claim_owner or "")
        with pytest.raises(LeaseLost):
            await stale.__aexit__(None, None, None)
        stored = await store.get_inbox(record.message_id)
        assert stored is not None
        assert stored.state is InboxState.RECEIVED
        async with store.transaction() as tx:
            tx.set_inbox_state(
                record.message_id, InboxState.ANSWERED, only_from=(InboxState.RECEIVED,)
            )
            tx.hold_claim(record.message_id, "alive")
        stored = await store.get_inbox(record.message_id)
        assert stored is not None
        assert stored.state is InboxState.ANSWERED

    async def test_renewed_lease_is_not_taken_over(
        self, claims_store: Store, clock: FrozenClock
    ) -> None:
        """A renewed claim outlives its first lease; an owner's released claim is no takeover."""
        store = claims_store
        record = inbox(clock.now())
        await self._received(store, record)
        await store.claim_inbox("p1", clock.now(), LEASE)
        await store.renew_claims("p1", clock.now() + 2 * LEASE)
        assert await store.claim_inbox("p2", clock.now() + LEASE, LEASE) == []
        await store.release_claim("p1", record.message_id)
        (again,) = await store.claim_inbox("p2", clock.now() + LEASE, LEASE)
        assert again.takeovers == 0
        await store.release_claim("p1", record.message_id)  # not p1's any more: left alone
        assert await store.claim_inbox("p3", clock.now() + LEASE, LEASE) == []

    async def test_only_due_received_requests_are_claimed(
        self, claims_store: Store, clock: FrozenClock
    ) -> None:
        """Rescheduled, answered and waiting requests are not claimed, nor requests of a
        service the claimer has no handler for."""
        store = claims_store
        later = inbox(clock.now(), next_attempt_at=clock.now() + timedelta(hours=1))
        done = inbox(clock.now(), state=InboxState.ANSWERED)
        waiting = inbox(clock.now(), state=InboxState.WAITING)
        other = replace(inbox(clock.now()), service="land-plot-info")
        await self._received(store, later, done, waiting, other)
        handled = ("tree-felling-permit",)
        assert await store.claim_inbox("p1", clock.now(), LEASE, services=handled) == []
        (claimed,) = await store.claim_inbox("p1", clock.now(), LEASE)  # any service
        assert claimed.message_id == other.message_id

    async def test_ordered_service_runs_a_case_in_order(
        self, claims_store: Store, clock: FrozenClock
    ) -> None:
        """For an ordered service the oldest open request of a case is claimed first and later
        ones wait until it is finished; other cases and unordered services are not held."""
        store = claims_store
        t = clock.now()
        first = replace(inbox(t), case_id="A")
        second = replace(inbox(t + timedelta(seconds=1)), case_id="A")
        other = replace(inbox(t + timedelta(seconds=2)), case_id="B")
        loose = replace(inbox(t + timedelta(seconds=3)), case_id="A", service="land-plot-info")
        await self._received(store, second, first, other, loose)
        ordered = ("tree-felling-permit",)
        claimed = await store.claim_inbox("p1", t, LEASE, ordered=ordered)
        assert [r.message_id for r in claimed] == [
            first.message_id,
            other.message_id,
            loose.message_id,
        ]
        await store.release_claim("p1", first.message_id)  # released, still open: holds back
        assert [r.message_id for r in await store.claim_inbox("p2", t, LEASE, ordered=ordered)] == [
            first.message_id
        ]
        async with store.transaction() as tx:
            tx.set_inbox_state(first.message_id, InboxState.ANSWERED)
        assert [r.message_id for r in await store.claim_inbox("p2", t, LEASE, ordered=ordered)] == [
            second.message_id
        ]

    # --- insert-or-fail: once under concurrency ------------------------------------------

    async def test_a_known_outbox_id_is_a_duplicate(
        self, claims_store: Store, clock: FrozenClock
    ) -> None:
        """Storing an outgoing message id again raises DuplicateMessage naming it; the first
        stays, and nothing of the second transaction is written."""
        store = claims_store
        record = outbox(clock.now())
        async with store.transaction() as tx:
            tx.add_outbox(record)
        head = await store.audit_head()
        again = store.transaction()
        tx = await again.__aenter__()
        tx.add_outbox(replace(record, digest="f" * 64))
        tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))
        with pytest.raises(DuplicateMessage) as raised:
            await again.__aexit__(None, None, None)
        assert raised.value.data["message_id"] == record.message_id
        assert await store.get_outbox(record.message_id) == record
        assert await store.audit_head() == head

    async def test_meta_only_new_commits_once(
        self, make_store: StoreFactory, clock: FrozenClock
    ) -> None:
        """Of several stores (as processes) putting one key only-new at once, exactly one
        commits; the others get StateConflict and the first value stays."""
        stores = [make_store() for _ in range(2)]
        for store in stores:
            await store.open()
        try:

            async def put(index: int) -> bool:
                try:
                    async with stores[index % 2].transaction() as tx:
                        tx.put_meta("told", f"run-{index}", only_new=True)
                except StateConflict:
                    return False
                return True

            won = await asyncio.gather(*(put(i) for i in range(8)))
            assert won.count(True) == 1
            assert await stores[0].get_meta("told") == f"run-{won.index(True)}"
        finally:
            for store in stores:
                await store.close()

    async def test_lease_is_held_by_one_owner_until_it_expires(
        self, claims_store: Store, clock: FrozenClock
    ) -> None:
        """A lease goes to the first owner, is renewed by it, refused to others while it
        lasts, taken over once it has expired, and given up with an ``until`` of now."""
        store, now = claims_store, clock.now()
        assert await store.take_lease("shipper", "p1", now, now + LEASE)
        assert not await store.take_lease("shipper", "p2", now, now + LEASE)
        assert await store.take_lease("other", "p2", now, now + LEASE)  # leases are by name
        later = now + LEASE / 2
        assert await store.take_lease("shipper", "p1", later, later + LEASE)  # renewed
        assert not await store.take_lease("shipper", "p2", now + LEASE, now + 2 * LEASE)
        expired = later + LEASE
        assert await store.take_lease("shipper", "p2", expired, expired + LEASE)  # taken over
        assert not await store.take_lease("shipper", "p1", expired, expired + LEASE)
        assert await store.take_lease("shipper", "p2", expired, expired)  # given up
        assert await store.take_lease("shipper", "p1", expired, expired + LEASE)

    async def test_concurrent_lease_takers_get_one_holder(
        self, two_stores: tuple[Store, Store], clock: FrozenClock
    ) -> None:
        """Two stores (as two processes) asking for a free lease at once: exactly one holds it."""
        one, two = two_stores
        now = clock.now()
        for round_ in range(20):
            name = f"lease-{round_}"
            held = await asyncio.gather(
                one.take_lease(name, "p1", now, now + LEASE),
                two.take_lease(name, "p2", now, now + LEASE),
            )
            assert sorted(held) == [False, True], name
