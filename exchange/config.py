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
    max_envelope_bytes: int = 1024 * 1024
