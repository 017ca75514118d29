"""The PostgreSQL store against the contract, plus one chain shared by several processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from exchange._clock import FrozenClock
from exchange.exceptions import DuplicateMessage, StoreUnavailable
from exchange.ledger import verify_chain
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.store import PostgresStore, _postgres_sql, _rows
from tests.postgres import DSN

from .claim_contract import ClaimContract
from .contract import PARTY, StoreContract, StoreFactory, inbox, outbox

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract, ClaimContract):
    """Every contract test, against a fresh schema in the test database."""

    @pytest.fixture
    def make_store(self, pg_schema: str, clock: FrozenClock) -> StoreFactory:
        """PostgreSQL stores in this test's schema."""

        def make(party: str = PARTY) -> PostgresStore:
            return PostgresStore(DSN, party, clock, schema=pg_schema)

        return make


async def test_processes_share_one_chain(pg_schema: str, clock: FrozenClock) -> None:
    """Three stores of one party (as three processes) appending at once keep one gapless chain."""
    stores = [PostgresStore(DSN, PARTY, clock, schema=pg_schema) for _ in range(3)]
    for store in stores:
        await store.open()
    try:

        async def create(store: PostgresStore) -> None:
            record = outbox(clock.now())
            async with store.transaction() as tx:
                tx.add_outbox(record)
                tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))
                tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))

        await asyncio.gather(*(create(stores[i % 3]) for i in range(150)))
        records = await stores[0].audit()
        assert [r.seq for r in records] == list(range(1, 301))
        verify_chain(records)
    finally:
        for store in stores:
            await store.close()


async def test_unreachable_server(clock: FrozenClock) -> None:
    """A server that does not answer raises StoreUnavailable without leaking the password."""
    store = PostgresStore("postgresql://postgres:secret@127.0.0.1:1/test", PARTY, clock)
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1/test") as info:
        await store.open()
    assert "secret" not in str(info.value)


def test_schema_name_is_checked(clock: FrozenClock) -> None:
    """A schema name that is not a plain identifier is refused before any SQL is built."""
    with pytest.raises(ValueError, match="identifier"):
        PostgresStore(DSN, PARTY, clock, schema='x"; DROP TABLE y; --')


async def test_a_version_1_store_is_migrated(pg_schema: str, clock: FrozenClock) -> None:
    """A schema made before claims gains the claim columns and version 2 on open."""
    conn = await asyncpg.connect(DSN)
    try:
        v1 = _postgres_sql._DDL.split("-- Version 2")[0].format(s=f'"{pg_schema}"')
        await conn.execute(v1)
        await conn.execute(
            f"INSERT INTO \"{pg_schema}\".meta (key, value) VALUES ('party', $1)",  # noqa: S608
            PARTY,
        )
        columns = ", ".join(_rows.INBOX_COLUMNS)
        marks = ", ".join(f"${i}" for i in range(1, len(_rows.INBOX_COLUMNS) + 1))
        record = inbox(clock.now())
        await conn.execute(
            f'INSERT INTO "{pg_schema}".inbox ({columns}) VALUES ({marks})',  # noqa: S608
            *_rows.inbox_values(record, lambda t: t),
        )
    finally:
        await conn.close()
    store = PostgresStore(DSN, PARTY, clock, schema=pg_schema)
    await store.open()
    try:
        assert await store.get_meta("schema_version") == "2"
        (claimed,) = await store.claim_inbox("p1", clock.now(), timedelta(seconds=30))
        assert claimed.message_id == record.message_id
    finally:
        await store.close()


async def test_group_commit_fails_only_the_failing_transaction(
    pg_schema: str, clock: FrozenClock
) -> None:
    """Transactions committed at once go as a group; one that conflicts fails alone (its
    audit event not written) and the others commit, their chain gapless."""
    store = PostgresStore(DSN, PARTY, clock, schema=pg_schema)
    await store.open()
    try:
        taken = outbox(clock.now())
        async with store.transaction() as tx:
            tx.add_outbox(taken)

        async def create(duplicate: bool) -> bool:
            record = taken if duplicate else outbox(clock.now())
            try:
                async with store.transaction() as tx:
                    tx.add_outbox(record)
                    tx.audit(AuditEvent(EventName.CREATED, message_id=record.message_id))
            except DuplicateMessage:
                return False
            return True

        done = await asyncio.gather(*(create(i == 20) for i in range(40)))
        assert done.count(False) == 1
        assert done[20] is False
        records = await store.audit()
        assert [r.seq for r in records] == list(range(1, 40))
        verify_chain(records)
    finally:
        await store.close()


async def _deadlock(pg_schema: str) -> asyncpg.TransactionRollbackError:
    """A real deadlock between two connections, as two processes of a party can meet one."""
    table = f'"{pg_schema}".deadlock_probe'
    setup = await asyncpg.connect(DSN)
    await setup.execute(f'CREATE SCHEMA IF NOT EXISTS "{pg_schema}"')
    await setup.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    await setup.execute(f"INSERT INTO {table} VALUES (1), (2)")  # noqa: S608
    await setup.close()
    first, second = await asyncpg.connect(DSN), await asyncpg.connect(DSN)
    locked = asyncio.Barrier(2)

    async def lock(conn: asyncpg.Connection, a: int, b: int) -> None:
        async with conn.transaction():
            await conn.execute(f"SELECT id FROM {table} WHERE id = $1 FOR UPDATE", a)  # noqa: S608
            await locked.wait()
            await conn.execute(f"SELECT id FROM {table} WHERE id = $1 FOR UPDATE", b)  # noqa: S608

    try:
        results = await asyncio.gather(
            lock(first, 1, 2), lock(second, 2, 1), return_exceptions=True
        )
    finally:
        await first.close()
        await second.close()
    [error] = [r for r in results if isinstance(r, BaseException)]
    assert isinstance(error, asyncpg.TransactionRollbackError)
    return error


async def test_a_deadlock_is_a_store_error_the_caller_retries(
    pg_schema: str, clock: FrozenClock
) -> None:
    """A rolled-back transaction (deadlock, serialization) is StoreUnavailable: the worker's
    loop and the inbound retry it, where a raw asyncpg error used to end the worker's loop."""
    error = await _deadlock(pg_schema)
    store = PostgresStore(DSN, PARTY, clock, schema=pg_schema)
    mapped = store._store_error(error)
    assert isinstance(mapped, StoreUnavailable)
    assert "rolled back" in mapped.message
