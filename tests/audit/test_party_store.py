"""What the audit needs from a party's store, on both backends: meta values and checkpoints."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from exchange._clock import FrozenClock
from exchange.node.store import PostgresStore, SQLiteStore, Store
from tests.postgres import DSN


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Store]:
    """An open party store on each backend."""
    made: Store
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "party.db", "improvement", clock)
    else:
        schema = f"{request.getfixturevalue('pg_prefix')}_{uuid.uuid4().hex[:6]}"
        made = PostgresStore(DSN, "improvement", clock, schema=schema)
    await made.open()
    yield made
    await made.close()


async def test_meta_values(store: Store) -> None:
    """set_meta stores a value durably; a second set replaces it; unknown keys are None."""
    assert await store.get_meta("audit.shipped_seq") is None
    await store.set_meta("audit.shipped_seq", "10")
    await store.set_meta("audit.shipped_seq", "500")
    assert await store.get_meta("audit.shipped_seq") == "500"


async def test_checkpoints(store: Store) -> None:
    """Checkpoints come back in seq order after a given seq; a second one at a seq is ignored."""
    await store.add_checkpoint(2000, b"second")
    await store.add_checkpoint(1000, b"first")
    await store.add_checkpoint(1000, b"forged later")
    assert list(await store.checkpoints()) == [(1000, b"first"), (2000, b"second")]
    assert list(await store.checkpoints(since_seq=1000)) == [(2000, b"second")]
