"""What a provider's handler receives and the ways it can answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.attachments.sender import Outgoing
from exchange.attachments.store import AttachmentFile
from exchange.envelope.model import Envelope


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """A verified, accepted request, as the handler sees it.

    ``message_id`` doubles as the idempotency key: a handler killed midway runs again with
    the same id, so anything it changes elsewhere should be keyed by it.
    """

    envelope: Envelope
    attempt: int
    attachments: tuple[AttachmentFile, ...] = ()
    """The request's attachments, complete and checked against the signed envelope: read
    them with ``open()`` (a file handle, never the bytes in memory)."""

    @property
    def message_id(self) -> str:
        """The request's id (and idempotency key)."""
        return self.envelope.message_id

    @property
    def payload(self) -> dict[str, Any]:
        """The request's payload."""
        return dict(self.envelope.payload or {})


@dataclass(frozen=True)
class Reply:
    """A handler's response with attachments (the signed permit as a PDF): the payload, and
    paths or ``Outgoing`` streams, checked against the service's catalog entry and sent
    beside the signed response as a request's attachments are."""

    payload: dict[str, Any]
    attachments: Sequence[Outgoing | Path | str] = ()


class Reject(Exception):
    """Raised by a handler to refuse a request with a signed fault (no retry)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


class Later:
    """Returned by a handler that hands the request on; answer it with ``Node.respond``."""


LATER = Later()

BROKER = "broker"
"""What a handler waits on when it needs the broker rather than another department."""


class Waiting(Exception):
    """Returned or raised by a handler that cannot answer yet: it waits, it did not fail.

    ``on`` is the message id of a request this node sent (the handler runs again once that
    request has its final answer: response, fault or undelivered), or ``BROKER``. Waiting
    parks the request without using up the handler's retry budget; the next run's
    ``IncomingRequest.attempt`` is higher, so the handler knows it is a re-run.
    """

    def __init__(self, on: str = BROKER) -> None:
        super().__init__(f"waiting on {on}")
        self.on = on


Handler = Callable[[IncomingRequest], Awaitable[dict[str, Any] | Reply | Later | Waiting]]
