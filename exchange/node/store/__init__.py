"""The party's store: outbox, inbox (the dedupe set) and the hash-chained audit log."""

from __future__ import annotations

from exchange.node.store.base import (
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
    Store,
    Transaction,
)
from exchange.node.store.postgres import PostgresStore
from exchange.node.store.sqlite import SQLiteStore

__all__ = [
    "InboxRecord",
    "InboxState",
    "OutboxRecord",
    "OutboxState",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "Transaction",
]
