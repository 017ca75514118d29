"""The SQLite central audit store against the contract."""

# ruff: noqa: S608 (the tampering helpers build SQL from this test's own names)

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from exchange.audit.central import CentralStore, SQLiteCentralStore
from exchange.exceptions import StoreError, StoreUnavailable
from exchange.ledger import codec
from exchange.ledger.event import AuditRecord

from .contract import CentralContract, Tamper


class SQLiteTamper:
    """Writes straight into the file with the append-only triggers dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _run(self, sql: str, params: tuple[Any, ...]) -> None:
        conn = sqlite3.connect(self.path)
        try:
            conn.execute("DROP TRIGGER IF EXISTS records_no_update")
            conn.execute("DROP TRIGGER IF EXISTS records_no_delete")
            conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()

    async def set_column(self, party: str, seq: int, column: str, value: Any) -> None:
        """Overwrite one column of one record."""
        self._run(
            f"UPDATE records SET {column} = ? WHERE party = ? AND seq = ?", (value, party, seq)
        )

    async def delete(self, party: str, seq: int) -> None:
        """Remove one record."""
        self._run("DELETE FROM records WHERE party = ? AND seq = ?", (party, seq))

    async def delete_from(self, party: str, seq: int) -> None:
        """Remove every record from ``seq`` on."""
        self._run("DELETE FROM records WHERE party = ? AND seq >= ?", (party, seq))

    async def insert(self, record: AuditRecord) -> None:
        """Add a record as it is."""
        marks = ", ".join("?" * len(codec.AUDIT_COLUMNS))
        self._run(
            f"INSERT INTO records ({', '.join(codec.AUDIT_COLUMNS)}) VALUES ({marks})",
            codec.audit_values(record, codec.time_text),
        )

    async def renumber(self, party: str, old: int, new: int) -> None:
        """Change a record's seq label."""
        self._run("UPDATE records SET seq = ? WHERE party = ? AND seq = ?", (new, party, old))

    async def cut(self, party: str, seq: int) -> None:
        """Remove the party's records and checkpoints from ``seq`` on, and its head row."""
        self._run("DELETE FROM records WHERE party = ? AND seq >= ?", (party, seq))
        self._run("DELETE FROM checkpoints WHERE party = ? AND seq >= ?", (party, seq))
        self._run("DELETE FROM heads WHERE party = ?", (party,))

    async def replace_checkpoint(self, party: str, seq: int, body: bytes) -> None:
        """Overwrite a stored checkpoint."""
        self._run("UPDATE checkpoints SET body = ? WHERE party = ? AND seq = ?", (body, party, seq))


class TestSQLiteCentral(CentralContract):
    """Every contract test against a fresh SQLite file."""

    @pytest.fixture
    async def central(self, tmp_path: Path) -> AsyncIterator[CentralStore]:
        """An open central store in this test's directory."""
        store = SQLiteCentralStore(tmp_path / "central.db")
        await store.open()
        yield store
        await store.close()

    @pytest.fixture
    def tamper(self, central: CentralStore, tmp_path: Path) -> Tamper:
        """Direct SQL on the file."""
        return SQLiteTamper(tmp_path / "central.db")


async def test_central_commits_are_durable(tmp_path: Path) -> None:
    """The collector acks a batch once committed: the commit must survive a power loss."""
    store = SQLiteCentralStore(tmp_path / "central.db")
    await store.open()
    try:
        conn = store._conn
        assert conn is not None
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        await store.close()


async def test_check_writable_fails_while_another_holds_the_write_lock(tmp_path: Path) -> None:
    """A central log another process keeps locked past the busy timeout is not writable."""
    store = SQLiteCentralStore(tmp_path / "central.db")
    await store.open()
    holder = sqlite3.connect(tmp_path / "central.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.check_writable()
        holder.execute("ROLLBACK")
        await store.check_writable()
    finally:
        holder.close()
        await store.close()
    with pytest.raises(StoreError, match="not open"):
        await store.check_writable()
