"""Audit settings from ``EXCHANGE_AUDIT_*`` variables: checkpoints, shipping, the central store."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO = Path(__file__).resolve().parent.parent.parent


class AuditSettings(BaseSettings):
    """How nodes checkpoint and ship their audit logs, and where the collector keeps them."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_AUDIT_")

    checkpoint_every: int = 1000  # a signed checkpoint after every N records (and on shutdown)
    batch_size: int = 500  # records per message to the collector
    ship_interval: float = 0.25  # seconds between looks at the store when there is nothing new
    path: Path = _REPO / "var" / "audit-central.db"  # the central store (SQLite) ...
    dsn: str | None = None  # ... or PostgreSQL when set
    schema_name: str = "audit_central"  # the central store's PostgreSQL schema
