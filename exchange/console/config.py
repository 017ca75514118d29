"""Console settings from ``EXCHANGE_CONSOLE_*`` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO = Path(__file__).resolve().parent.parent.parent


class ConsoleSettings(BaseSettings):
    """Where the console listens, its users file, and its session and login limits."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_CONSOLE_")

    users: Path = _REPO / "var" / "console-users.json"  # managed by `exchange console user add`
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=1, le=65535)
    # Cookies only over HTTPS; turn off only for a console reached on localhost without TLS.
    secure_cookies: bool = True
    session_hours: float = Field(default=8.0, gt=0, le=24)
    login_attempts: int = Field(default=5, ge=1)  # failed logins per user and per address ...
    login_window_seconds: float = Field(default=300.0, gt=0)  # ... within this many seconds
    page_size: int = Field(default=50, ge=1, le=500)
