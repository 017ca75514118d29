"""Audit settings from ``EXCHANGE_AUDIT_*`` variables: checkpoints, shipping, the central store."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO = Path(__file__).resolve().parent.parent.parent


class AuditSettings(BaseSettings):
    """How nodes checkpoint and ship their audit logs, and where the collector keeps them."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_AUDIT_")

    # A signed checkpoint after every N records (and on shutdown).
    checkpoint_every: int = Field(default=1000, ge=1)
    batch_size: int = Field(default=500, ge=1)  # records per message to the collector
    # Seconds between looks at the store when there is nothing new.
    ship_interval: float = Field(default=0.25, gt=0)
    path: Path = _REPO / "var" / "audit-central.db"  # the central store (SQLite) ...
    dsn: str | None = None  # ... or PostgreSQL when set
    # The central store's PostgreSQL schema: a plain identifier, it is put into SQL as is.
    schema_name: str = Field(default="audit_central", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
