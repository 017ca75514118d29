"""The PostgreSQL central audit store against the contract."""

# ruff: noqa: S608 (the tampering helpers build SQL from this test's own names)

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from exchange.audit.central import CentralStore
from exchange.audit.central.postgres import PostgresCentralStore
from exchange.ledger import codec
from exchange.ledger.event import AuditRecord
from tests.postgres import DSN

from .contract import CentralContract, Tamper

pytestmark = pytest.mark.postgres


class PostgresTamper:
    """Writes straight into the schema with the append-only trigger disabled."""

    def __init__(self, schema: str) -> None:
        self.s = f'"{schema}"'

    async def _run(self, sql: str, *args: Any) -> None:
        conn = await asyncpg.connect(DSN)
        try:
            async with conn.transaction():
                await conn.execute(f"ALTER TABLE {self.s}.records DISABLE TRIGGER USER")
                await conn.execute(sql, *args)
                await conn.execute(f"ALTER TABLE {self.s}.records ENABLE TRIGGER USER")
        finally:
            await conn.close()

    async def set_column(self, party: str, seq: int, column: str, value: Any) -> None:
        """Overwrite one column of one record."""
        await self._run(
            f"UPDATE {self.s}.records SET {column} = $1 WHERE party = $2 AND seq = $3",
            value,
            party,
            seq,
        )

    async def delete(self, party: str, seq: int) -> None:
        """Remove one record."""
        await self._run(f"DELETE FROM {self.s}.records WHERE party = $1 AND seq = $2", party, seq)

    async def delete_from(self, party: str, seq: int) -> None:
        """Remove every record from ``seq`` on."""
        await self._run(f"DELETE FROM {self.s}.records WHERE party = $1 AND seq >= $2", party, seq)

    async def insert(self, record: AuditRecord) -> None:
        """Add a record as it is."""
        marks = ", ".join(f"${i}" for i in range(1, len(codec.AUDIT_COLUMNS) + 1))
        await self._run(
            f"INSERT INTO {self.s}.records ({', '.join(codec.AUDIT_COLUMNS)}) VALUES ({marks})",
            *codec.audit_values(record, codec.as_is),
        )

    async def renumber(self, party: str, old: int, new: int) -> None:
        """Change a record's seq label."""
        await self._run(
            f"UPDATE {self.s}.records SET seq = $1 WHERE party = $2 AND seq = $3", new, party, old
        )

    async def cut(self, party: str, seq: int) -> None:
        """Remove the party's records and checkpoints from ``seq`` on, and its head row."""
        await self._run(f"DELETE FROM {self.s}.records WHERE party = $1 AND seq >= $2", party, seq)
        await self._run(
            f"DELETE FROM {self.s}.checkpoints WHERE party = $1 AND seq >= $2", party, seq
        )
        await self._run(f"DELETE FROM {self.s}.heads WHERE party = $1", party)

    async def replace_checkpoint(self, party: str, seq: int, body: bytes) -> None:
        """Overwrite a stored checkpoint."""
        await self._run(
            f"UPDATE {self.s}.checkpoints SET body = $1 WHERE party = $2 AND seq = $3",
            body,
            party,
            seq,
        )


class TestPostgresCentral(CentralContract):
    """Every contract test against a fresh schema."""

    @pytest.fixture
    async def central(self, pg_schema: str) -> AsyncIterator[CentralStore]:
        """An open central store in this test's schema."""
        store = PostgresCentralStore(DSN, pg_schema)
        await store.open()
        yield store
        await store.close()

    @pytest.fixture
    def tamper(self, central: CentralStore, pg_schema: str) -> Tamper:
        """Direct SQL on the schema."""
        return PostgresTamper(pg_schema)
