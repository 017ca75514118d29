"""Configuration from ``EXCHANGE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Settings shared by every command and node."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_")

    certs_dir: Path = _REPO / "certs"
    schemas_dir: Path = _REPO / "schemas"
    catalog: Path = _REPO / "catalog.toml"
    max_envelope_bytes: int = 1024 * 1024
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    bus_prefix: str = "kzn."
    store_dir: Path = _REPO / "var"
    store_dsn: str | None = None  # postgresql://... to share a party's state between processes
