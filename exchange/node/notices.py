"""What a node tells its departmental system about the requests it sent."""

from __future__ import annotations

from dataclasses import dataclass

from exchange.envelope.model import Envelope


@dataclass(frozen=True, slots=True)
class Notice:
    """A receipt, status, response or fault arrived for ``request_id``, or it was undelivered.

    ``kind`` is the envelope kind, or ``undelivered`` (then ``envelope`` is None).
    """

    kind: str
    request_id: str
    envelope: Envelope | None = None

    @property
    def final(self) -> bool:
        """True for a response, a fault or undelivered: the request's one final answer.

        A status, response or fault that comes after it is recorded as ``late-answer`` and
        never noticed.
        """
        return self.kind in ("response", "fault", "undelivered")
