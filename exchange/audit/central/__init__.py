"""The central audit store: every party's chain as the collector received it."""

from __future__ import annotations

from exchange.audit.central.base import CentralStore, Finding, IngestOutcome, RecordQuery
from exchange.audit.central.factory import open_central
from exchange.audit.central.sqlite import SQLiteCentralStore

__all__ = [
    "CentralStore",
    "Finding",
    "IngestOutcome",
    "RecordQuery",
    "SQLiteCentralStore",
    "open_central",
]
