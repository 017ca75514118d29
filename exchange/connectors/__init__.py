"""Connectors: how departmental systems that are not Python reach their party's node."""

from exchange.connectors._callbacks import CallbackConfig
from exchange.connectors.folder import FolderBridge
from exchange.connectors.http import HttpBridge

__all__ = ["CallbackConfig", "FolderBridge", "HttpBridge"]
