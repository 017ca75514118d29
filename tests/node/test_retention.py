"""The pruner loop: when finished messages lose their content, by the party's settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import structlog

from exchange._clock import FrozenClock
from exchange.attachments import AttachmentStore
from exchange.config import Settings
from exchange.node.config import NodeConfig
from exchange.node.context import NodeContext
from exchange.node.factory import node_config
from exchange.node.retention import Pruner, prune_cutoff
from exchange.node.store import OutboxState, SQLiteStore
from exchange.node.store.base import PRUNED
from tests.node.store.contract import PARTY, outbox

DAY = timedelta(days=1)


def test_cutoff(clock: FrozenClock) -> None:
    """Metadata-only prunes everything finished, retention what is older, default nothing."""
    now = clock.now()
    assert prune_cutoff(NodeConfig(), now) is None
    assert prune_cutoff(NodeConfig(message_retention=30 * DAY), now) == now - 30 * DAY
    both = NodeConfig(message_retention=30 * DAY, metadata_only=True)
    assert prune_cutoff(both, now) == now


def test_settings_reach_the_node_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """EXCHANGE_MESSAGE_RETENTION_DAYS and EXCHANGE_METADATA_ONLY become the node's config."""
    monkeypatch.setenv("EXCHANGE_MESSAGE_RETENTION_DAYS", "90")
    monkeypatch.setenv("EXCHANGE_METADATA_ONLY", "true")
    config = node_config(Settings())
    assert (config.message_retention, config.metadata_only) == (90 * DAY, True)
    monkeypatch.delenv("EXCHANGE_MESSAGE_RETENTION_DAYS")
    monkeypatch.delenv("EXCHANGE_METADATA_ONLY")
    assert (node_config(Settings()).message_retention, Settings().metadata_only) == (None, False)


@pytest.fixture
async def store(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[SQLiteStore]:
    """An open SQLite store."""
    store = SQLiteStore(tmp_path / "party.db", PARTY, clock)
    await store.open()
    yield store
    await store.close()


def context(store: SQLiteStore, clock: FrozenClock, config: NodeConfig) -> NodeContext:
    """Just the parts of a node's context the pruner uses."""
    log = structlog.get_logger("test")
    return cast(
        NodeContext,
        SimpleNamespace(
            store=store,
            clock=clock,
            config=config,
            log=lambda **_: log,
            attachments=AttachmentStore(store.path.parent / f"{PARTY}.attachments"),
        ),
    )


async def test_retention_prunes_only_old_finished(store: SQLiteStore, clock: FrozenClock) -> None:
    """With 30 days' retention, a finished message of 31 days ago goes; younger ones stay."""
    old = outbox(clock.now() - 31 * DAY, state=OutboxState.DONE)
    young = outbox(clock.now() - 29 * DAY, state=OutboxState.DONE)
    async with store.transaction() as tx:
        tx.add_outbox(old)
        tx.add_outbox(young)
    pruner = Pruner(context(store, clock, NodeConfig(message_retention=30 * DAY)))
    assert pruner.enabled
    assert await pruner.prune_once() == 1
    assert await store.get_outbox(old.message_id) == replace(old, wire=PRUNED)
    assert await store.get_outbox(young.message_id) == young
    clock.advance(2 * DAY)
    assert await pruner.prune_once() == 1


async def test_loop_runs_until_cancelled(store: SQLiteStore, clock: FrozenClock) -> None:
    """The metadata-only loop prunes what finishes while it runs; off, it returns at once."""
    off = Pruner(context(store, clock, NodeConfig()))
    await asyncio.wait_for(off.run(), 1)
    assert await off.prune_once() == 0
    config = NodeConfig(metadata_only=True, prune_interval=0.01)
    running = asyncio.create_task(Pruner(context(store, clock, config)).run())
    try:
        done = outbox(clock.now() - timedelta(seconds=1), state=OutboxState.DONE)
        async with store.transaction() as tx:
            tx.add_outbox(done)
        for _ in range(200):
            stored = await store.get_outbox(done.message_id)
            if stored is not None and stored.wire == PRUNED:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("not pruned")
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
