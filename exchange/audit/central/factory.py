"""Choosing the central audit store from settings."""

from __future__ import annotations

from exchange.audit.central.base import CentralStore
from exchange.audit.config import AuditSettings


def open_central(settings: AuditSettings | None = None) -> CentralStore:
    """PostgreSQL if ``EXCHANGE_AUDIT_DSN`` is set, else the SQLite file ``EXCHANGE_AUDIT_PATH``."""
    settings = settings or AuditSettings()
    if settings.dsn:
        from exchange.audit.central.postgres import PostgresCentralStore

        return PostgresCentralStore(settings.dsn, settings.schema_name)
    from exchange.audit.central.sqlite import SQLiteCentralStore

    return SQLiteCentralStore(settings.path)
