"""The gate: a request that lists attachments is accepted only once they all arrived intact.

A verified request whose attachments are not all in the store is held (in memory; its
announcements are on disk with the receiver) and its delivery acked: no receipt yet, so its
sender resends it, and its chunks, until one comes. When it was first held is the caller's
to keep durably (the party's store): a restart forgets what was held, not since when. When
the last attachment is installed the request goes on as any other (stored, receipted,
handed to its handler). A mismatch refuses it with ``attachment-mismatch``; one not
complete within its bound (derived from the service's deadline) with ``attachment-missing``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from exchange._clock import Clock
from exchange.attachments.receiver import Receiver
from exchange.attachments.store import AttachmentStore, Stored
from exchange.envelope.model import Attachment, Envelope
from exchange.exceptions import AttachmentMismatch, AttachmentMissing, ExchangeError
from exchange.signing import VerifiedEnvelope

Accept = Callable[[VerifiedEnvelope], Awaitable[str]]
Refuse = Callable[[VerifiedEnvelope, ExchangeError], Awaitable[str]]
AWAITING = "awaiting-attachments"
"""What the inbound reports for a request held for its attachments."""


@dataclass
class _Held:
    verified: VerifiedEnvelope
    waiting: set[str]
    since: datetime  # when it was first held (by any process, before a restart too)
    until: datetime
    accept: Accept | None = None  # None: the gate's own (a request's)
    refuse: Refuse | None = None


class Gate:
    """Requests held until their attachments are complete."""

    def __init__(
        self,
        store: AttachmentStore,
        receiver: Receiver,
        clock: Clock,
        bound: Callable[[Envelope], timedelta],
    ) -> None:
        self.store = store
        self.receiver = receiver
        self.clock = clock
        self._bound = bound
        self._held: dict[str, _Held] = {}
        self.accept: Accept | None = None
        self.refuse: Refuse | None = None

    def missing(self, envelope: Envelope) -> list[Attachment]:
        """The attachments of ``envelope`` the store does not hold yet.

        Raises:
            AttachmentMismatch (attachment-mismatch): one held is of another size than listed.
        """
        missing = []
        for attachment in envelope.attachments:
            held = self.store.get(attachment.sha256)
            if held is None:
                missing.append(attachment)
            elif held.size != attachment.size:
                raise AttachmentMismatch(
                    f"{attachment.name}: {held.size} bytes hash to {attachment.sha256}, "
                    f"the envelope says {attachment.size}",
                    sha256=attachment.sha256,
                )
        return missing

    def hold(
        self,
        verified: VerifiedEnvelope,
        missing: list[Attachment],
        *,
        since: datetime,
        accept: Accept | None = None,
        refuse: Refuse | None = None,
    ) -> str:
        """Hold an envelope until ``missing`` arrive; announce them to the receiver.

        Its bound runs from ``since``, when it was first held (before a restart too). A
        request goes on through the gate's ``accept`` and ``refuse``; an answer (which is
        never refused, only noted) passes its own.
        """
        envelope = verified.envelope
        for attachment in missing:
            self.receiver.expect(attachment.sha256, attachment.size, envelope.sender)
        if envelope.message_id not in self._held:
            until = min(since + self._bound(envelope), envelope.expires_at)
            waiting = {a.sha256 for a in missing}
            self._held[envelope.message_id] = _Held(verified, waiting, since, until, accept, refuse)
        return AWAITING

    def first_seen(self, request_id: str) -> datetime | None:
        """When ``request_id`` was first held, while this process holds it."""
        held = self._held.get(request_id)
        return None if held is None else held.since

    def holding(self, request_id: str) -> bool:
        """True while ``request_id`` waits for attachments."""
        return request_id in self._held

    async def completed(self, stored: Stored) -> None:
        """An attachment was installed: requests it completes go on."""
        for request_id, held in list(self._held.items()):
            held.waiting.discard(stored.sha256)
            if not held.waiting and self._held.pop(request_id, None) is not None:
                accept = held.accept or self.accept
                assert accept is not None
                await accept(held.verified)

    async def mismatched(self, sha256: str, error: AttachmentMismatch) -> None:
        """An attachment did not match: requests listing it are refused."""
        for request_id, held in list(self._held.items()):
            if sha256 in held.waiting:
                await self._refuse(request_id, held, error)

    async def expire(self) -> int:
        """Refuse held requests past their bound with ``attachment-missing``; how many."""
        now = self.clock.now()
        late = [(rid, held) for rid, held in self._held.items() if held.until <= now]
        for request_id, held in late:
            names = ", ".join(
                a.name for a in held.verified.envelope.attachments if a.sha256 in held.waiting
            )
            await self._refuse(
                request_id,
                held,
                AttachmentMissing(
                    f"attachments not complete by {held.until.isoformat()}: {names}; "
                    "file the request again with its attachments"
                ),
            )
        return len(late)

    async def _refuse(self, request_id: str, held: _Held, error: ExchangeError) -> None:
        if self._held.pop(request_id, None) is None:
            return
        for sha256 in held.waiting:
            if not any(sha256 in other.waiting for other in self._held.values()):
                self.receiver.refuse(sha256)
        refuse = held.refuse or self.refuse
        assert refuse is not None
        await refuse(held.verified, error)
