"""Parked requests: the handler waits for another request's answer or for the broker.

DESIGN.md, Waiting is not failing. A parked request stays ``RECEIVED`` (open: it can be
cancelled, answered by ``Node.respond``, reported as due) with its next run put off; what it
waits on is kept in the store's meta table, written in the same transaction as the audit
``waiting`` record, so every process of the party (and a restarted one) sees it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from exchange.node.store.base import Store, Transaction

_PREFIX = "parked."


@dataclass(frozen=True, slots=True)
class Parked:
    """What a request's handler last waited on, and how often it waited (runs, not failures)."""

    on: str  # the message id of a request this party sent, or handlers.BROKER
    since: datetime
    waits: int
    active: bool = True  # False once what it waited on came and the handler ran again
    overdue_told: bool = False  # the requester got its one ``overdue`` status

    def again(self, on: str, now: datetime) -> Parked:
        """The handler waited once more (on the same or another thing)."""
        since = self.since if on == self.on and self.active else now
        return replace(self, on=on, since=since, waits=self.waits + 1, active=True)

    def to_text(self) -> str:
        """The meta value."""
        return json.dumps(
            {
                "on": self.on,
                "since": self.since.isoformat(),
                "waits": self.waits,
                "active": self.active,
                "overdue_told": self.overdue_told,
            }
        )

    @classmethod
    def from_text(cls, text: str) -> Parked:
        """Read a meta value written by ``to_text``."""
        data = json.loads(text)
        return cls(
            on=str(data["on"]),
            since=datetime.fromisoformat(data["since"]),
            waits=int(data["waits"]),
            active=bool(data["active"]),
            overdue_told=bool(data.get("overdue_told", False)),
        )


def write_parked(tx: Transaction, request_id: str, parked: Parked) -> None:
    """Keep ``parked`` for the request, with the rest of ``tx``."""
    tx.put_meta(_PREFIX + request_id, parked.to_text())


async def read_parked(store: Store, request_id: str) -> Parked | None:
    """What the request's handler last waited on, or None if it never waited."""
    text = await store.get_meta(_PREFIX + request_id)
    return Parked.from_text(text) if text else None


async def waiting_on(store: Store, request_id: str) -> str | None:
    """What an open request waits on now (a request id or ``broker``), or None."""
    parked = await read_parked(store, request_id)
    return parked.on if parked is not None and parked.active else None
