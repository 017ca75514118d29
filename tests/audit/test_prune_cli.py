"""``exchange audit prune``: a party's finished messages lose their content, nothing else."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from exchange._clock import SYSTEM_CLOCK
from exchange.cli import app
from exchange.ledger import verify_chain
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.store import InboxState, OutboxRecord, OutboxState, SQLiteStore
from exchange.node.store.base import PRUNED, InboxRecord
from tests.node.store.contract import PARTY, inbox, outbox

DAY = timedelta(days=1)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A store directory holding the party's store, with messages 40 and 5 days old."""
    return tmp_path / "stores"


async def _fill(path: Path) -> tuple[OutboxRecord, OutboxRecord, InboxRecord, OutboxRecord]:
    now = SYSTEM_CLOCK.now()
    old = outbox(now - 40 * DAY, state=OutboxState.DONE)
    young = outbox(now - 5 * DAY, state=OutboxState.ANSWERED)
    answered = inbox(now - 40 * DAY, state=InboxState.ANSWERED)
    still_open = outbox(now - 40 * DAY, state=OutboxState.SENT)
    store = SQLiteStore(path, PARTY, SYSTEM_CLOCK)
    await store.open()
    async with store.transaction() as tx:
        for record in (old, young, still_open):
            tx.add_outbox(record)
        tx.add_inbox(answered)
        tx.audit(AuditEvent(EventName.CREATED, message_id=old.message_id))
    await store.close()
    return old, young, answered, still_open


async def _read(path: Path) -> SQLiteStore:
    store = SQLiteStore(path, PARTY, SYSTEM_CLOCK)
    await store.open()
    return store


def run(store_dir: Path, *args: str, **env: str) -> Result:
    """Invoke ``exchange`` with this test's store directory (SQLite)."""
    environment = {
        "EXCHANGE_STORE_DIR": str(store_dir),
        "EXCHANGE_STORE_DSN": "",
        "EXCHANGE_MESSAGE_RETENTION_DAYS": "",
        "EXCHANGE_METADATA_ONLY": "false",
        **env,
    }
    return CliRunner().invoke(app, list(args), env=environment, catch_exceptions=False)


def test_prune_by_days(store_dir: Path) -> None:
    """--days 30 empties the old finished messages' wire; open, young rows and audit stay."""
    store_dir.mkdir()
    path = store_dir / f"{PARTY}.db"
    old, young, answered, still_open = asyncio.run(_fill(path))

    result = run(store_dir, "audit", "prune", PARTY, "--days", "30", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pruned"] == 2

    async def check() -> None:
        store = await _read(path)
        try:
            assert await store.get_outbox(old.message_id) == replace(old, wire=PRUNED)
            assert await store.get_inbox(answered.message_id) == replace(answered, wire=PRUNED)
            assert await store.get_outbox(young.message_id) == young
            assert await store.get_outbox(still_open.message_id) == still_open
            records = await store.audit()
            assert [r.event.event for r in records] == ["created", "content-pruned"]
            verify_chain(records)
        finally:
            await store.close()

    asyncio.run(check())
    again = run(store_dir, "audit", "prune", PARTY, "--days", "30")
    assert again.exit_code == 0, again.output
    assert "content of 0 finished message(s) older than 30 day(s) pruned" in again.output


def test_prune_defaults_from_settings(store_dir: Path) -> None:
    """Without --days: the retention setting, metadata-only (everything finished), or an error."""
    store_dir.mkdir()
    asyncio.run(_fill(store_dir / f"{PARTY}.db"))
    missing = run(store_dir, "audit", "prune", PARTY)
    assert missing.exit_code == 2
    assert "EXCHANGE_MESSAGE_RETENTION_DAYS" in missing.output
    kept = run(store_dir, "audit", "prune", PARTY, "--json", EXCHANGE_MESSAGE_RETENTION_DAYS="60")
    assert json.loads(kept.output)["pruned"] == 0
    everything = run(store_dir, "audit", "prune", PARTY, "--json", EXCHANGE_METADATA_ONLY="true")
    assert json.loads(everything.output)["pruned"] == 3


def test_prune_unknown_party(store_dir: Path) -> None:
    """A party with no store is an error, not a new empty store."""
    store_dir.mkdir()
    result = run(store_dir, "audit", "prune", "nobody", "--days", "1")
    assert result.exit_code == 2
    assert "nobody has no store" in result.output
    assert not (store_dir / "nobody.db").exists()


def test_prune_bad_setting(store_dir: Path) -> None:
    """A malformed retention setting is a config error naming the variable's field."""
    store_dir.mkdir()
    result = run(store_dir, "audit", "prune", PARTY, EXCHANGE_MESSAGE_RETENTION_DAYS="soon")
    assert result.exit_code == 1
    assert "error config-error: bad EXCHANGE_MESSAGE_RETENTION_DAYS" in result.output
