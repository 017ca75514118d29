"""The support console: search, cases, deadlines, dead letters and certificates in a browser."""

from __future__ import annotations

from exchange.console.app import create_app
from exchange.console.auth import Role, UsersFile
from exchange.console.config import ConsoleSettings
from exchange.console.replay import REPLAYER, Replayer

__all__ = ["REPLAYER", "ConsoleSettings", "Replayer", "Role", "UsersFile", "create_app"]
