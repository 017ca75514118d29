"""What a provider's handler receives and the ways it can answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from exchange.envelope.model import Envelope


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """A verified, accepted request, as the handler sees it.

    ``message_id`` doubles as the idempotency key: a handler killed midway runs again with
    the same id, so anything it changes elsewhere should be keyed by it.
    """

    envelope: Envelope
    attempt: int

    @property
    def message_id(self) -> str:
        """The request's id (and idempotency key)."""
        return self.envelope.message_id

    @property
    def payload(self) -> dict[str, Any]:
        """The request's payload."""
        return dict(self.envelope.payload or {})


class Reject(Exception):
    """Raised by a handler to refuse a request with a signed fault (no retry)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


class Later:
    """Returned by a handler that hands the request on; answer it with ``Node.respond``."""


LATER = Later()

Handler = Callable[[IncomingRequest], Awaitable[dict[str, Any] | Later]]
