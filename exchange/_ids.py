"""Identifiers: message ids are random UUIDs, unique across parties without coordination."""

from __future__ import annotations

import uuid


def new_message_id() -> str:
    """Return a fresh message id."""
    return str(uuid.uuid4())
