"""Tracing a message or a case across parties: the timeline support staff read.

By message id: the message, the request it answers, and everything that refers to that
request. By case id: every record of the case. Steps are in time order; for each
request a department received, the time it kept the sender waiting (receipt to answer).
An answer that came after a request's final answer is a step marked ``late``: on record,
never the request's answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exchange.audit.central.base import CentralStore
from exchange.ledger.chain import canonical_time
from exchange.ledger.event import ANSWER_RECEIVED, AuditRecord, EventName

_ANSWER_KINDS = ("response", "fault")


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Which steps to show (waiting times are always computed from the whole trace)."""

    party: str | None = None
    service: str | None = None
    status: str | None = None  # an event name: received, responded, fault-sent ...
    since: datetime | None = None
    until: datetime | None = None

    def keeps(self, record: AuditRecord) -> bool:
        """True when the step passes every filter that is set."""
        e = record.event
        return (
            (self.party is None or record.party == self.party)
            and (self.service is None or e.service == self.service)
            and (self.status is None or e.event == self.status)
            and (self.since is None or record.at >= self.since)
            and (self.until is None or record.at <= self.until)
        )


@dataclass(frozen=True, slots=True)
class Wait:
    """How long a department kept a request: from its receipt to its answer (or to now)."""

    party: str
    request_id: str
    service: str | None
    received_at: datetime
    answered_at: datetime | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return {
            "party": self.party,
            "request_id": self.request_id,
            "service": self.service,
            "received_at": canonical_time(self.received_at),
            "answered_at": None if self.answered_at is None else canonical_time(self.answered_at),
            "open": self.answered_at is None,
            "seconds": round(self.seconds, 6),
        }


@dataclass(slots=True)
class Timeline:
    """A trace: its steps in time order and the waiting time per department."""

    query: str
    steps: list[AuditRecord] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)

    def waiting_by_party(self) -> dict[str, float]:
        """Total seconds each department kept requests of this trace."""
        totals: dict[str, float] = {}
        for wait in self.waits:
            totals[wait.party] = totals.get(wait.party, 0.0) + wait.seconds
        return totals

    def to_json(self) -> dict[str, Any]:
        """As a JSON document (``exchange trace --json``)."""
        return {
            "query": self.query,
            "steps": [
                {
                    "at": canonical_time(r.at),
                    "party": r.party,
                    "seq": r.seq,
                    "event": r.event.event,
                    "message_id": r.event.message_id,
                    "correlation_id": r.event.correlation_id,
                    "case_id": r.event.case_id,
                    "service": r.event.service,
                    "kind": r.event.kind,
                    "detail": dict(r.event.detail),
                    "late": r.event.event is EventName.LATE_ANSWER,
                }
                for r in self.steps
            ],
            "late_answers": [
                {"party": r.party, "message_id": r.event.message_id, "kind": r.event.kind}
                | {"request_id": r.event.correlation_id, "digest": r.event.digest}
                for r in self.steps
                if r.event.event is EventName.LATE_ANSWER
            ],
            "waiting": [w.to_json() for w in self.waits],
            "waiting_by_party": {p: round(s, 6) for p, s in self.waiting_by_party().items()},
        }


async def trace(
    store: CentralStore, ident: str, now: datetime, filters: TraceFilter | None = None
) -> Timeline:
    """The timeline of a message id or a case id from the central store."""
    return build_timeline(ident, await store.traced(ident), now, filters)


def build_timeline(
    query: str, records: Iterable[AuditRecord], now: datetime, filters: TraceFilter | None = None
) -> Timeline:
    """Order records into steps and measure each department's waiting time (pure)."""
    ordered = sorted(records, key=lambda r: (r.at, r.party, r.seq))
    timeline = Timeline(query, [r for r in ordered if filters is None or filters.keeps(r)])
    timeline.waits = _waits(ordered, now)
    return timeline


def _waits(ordered: Sequence[AuditRecord], now: datetime) -> list[Wait]:
    answers: dict[tuple[str, str], AuditRecord] = {}
    for record in ordered:
        e = record.event
        if e.kind in _ANSWER_KINDS and e.correlation_id and e.event not in ANSWER_RECEIVED:
            answers.setdefault((record.party, e.correlation_id), record)
    waits: list[Wait] = []
    seen: set[tuple[str, str]] = set()
    for record in ordered:
        e = record.event
        if e.event is not EventName.RECEIVED or e.kind != "request" or e.message_id is None:
            continue
        key = (record.party, e.message_id)
        if key in seen:
            continue
        seen.add(key)
        answer = answers.get(key)
        end = answer.at if answer is not None else now
        waits.append(
            Wait(
                party=record.party,
                request_id=e.message_id,
                service=e.service,
                received_at=record.at,
                answered_at=None if answer is None else answer.at,
                seconds=max((end - record.at).total_seconds(), 0.0),
            )
        )
    return waits
