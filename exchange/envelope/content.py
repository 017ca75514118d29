"""What an answer says, in the shape every connector and the CLI hand on (JSON, callbacks)."""

from __future__ import annotations

from typing import Any

from exchange.envelope.model import Envelope


def answer_content(envelope: Envelope) -> dict[str, Any]:
    """The envelope's payload and fault, as present, for a JSON document."""
    content: dict[str, Any] = {}
    if envelope.payload is not None:
        content["payload"] = envelope.payload
    if envelope.fault is not None:
        content["fault"] = envelope.fault.model_dump()
    return content
