"""The deadline report of providing parties: open requests by due date, turnaround per service.

Read-only: it reads each party's inbox (the requests it received) and, for each closed one,
the answer it sent (``Store.outbox_answering``). "Now" comes from the clock, so a report can
be made as of any moment: requests received later are left out, and a request answered
later counts as open.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from exchange._clock import Clock
from exchange.catalog import Catalog, Deadline, Service
from exchange.exceptions import UnknownService
from exchange.node.parking import waiting_on
from exchange.node.store.base import OPEN_INBOX, InboxRecord, InboxState, Store
from exchange.workdays.calendar import WorkCalendar, kazan_calendar

CLOSED_STATES = (InboxState.ANSWERED, InboxState.REJECTED, InboxState.DEAD)
"""A request in these states was answered by a response or a fault (cancelled and expired
requests were never answered and count nowhere)."""

ANSWER_KINDS = ("response", "fault")
_CONCURRENT_READS = 32


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """A request still waiting for its answer, with its due date."""

    party: str
    message_id: str
    service: str
    sender: str
    case_id: str | None
    state: InboxState  # in the store now (answered later than the report's moment: closed)
    received_at: datetime
    deadline: Deadline
    due_date: date  # the last day to answer, Kazan date
    due_at: datetime  # when it becomes overdue: the end of the due date
    days_left: int  # calendar days from today to the due date; 0 due today, < 0 overdue
    waiting_on: str | None = None  # its handler waits for this request's answer, or broker

    @property
    def overdue(self) -> bool:
        """The due date has passed."""
        return self.days_left < 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times ISO 8601 UTC, dates ISO)."""
        return {
            "party": self.party,
            "message_id": self.message_id,
            "service": self.service,
            "sender": self.sender,
            "case_id": self.case_id,
            "state": self.state.value,
            "received_at": self.received_at.isoformat(),
            "deadline": _deadline_json(self.deadline),
            "due_date": self.due_date.isoformat(),
            "due_at": self.due_at.isoformat(),
            "days_left": self.days_left,
            "overdue": self.overdue,
            "waiting_on": self.waiting_on,
        }


@dataclass(frozen=True, slots=True)
class Turnaround:
    """How fast one party answered one service, against the service's deadline.

    Days are counted in the deadline's unit (calendar or working days, see
    ``WorkCalendar.days_taken``); the median and 90th percentile interpolate linearly
    between ranks, as numpy's default does.
    """

    party: str
    service: str
    deadline: Deadline
    answered: int  # requests answered (response or fault)
    on_time: int  # of those, answered by the end of their due date
    median_days: float | None  # None when nothing was answered
    p90_days: float | None
    open: int  # requests still waiting
    overdue: int  # of those, past their due date

    @property
    def on_time_share(self) -> float | None:
        """The share (0 to 1) of answered requests answered on time; None if none answered."""
        return self.on_time / self.answered if self.answered else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "party": self.party,
            "service": self.service,
            "deadline": _deadline_json(self.deadline),
            "answered": self.answered,
            "on_time": self.on_time,
            "on_time_share": self.on_time_share,
            "median_days": self.median_days,
            "p90_days": self.p90_days,
            "open": self.open,
            "overdue": self.overdue,
        }


@dataclass(frozen=True, slots=True)
class SlaReport:
    """Open requests (overdue first, then by due date) and turnaround per service."""

    as_of: datetime
    open_requests: tuple[OpenRequest, ...]
    turnaround: tuple[Turnaround, ...]
    skipped: int  # requests left out: service not in the catalog, or closed with no answer

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, for ``exchange sla --json``."""
        return {
            "as_of": self.as_of.isoformat(),
            "open": [request.to_json() for request in self.open_requests],
            "turnaround": [row.to_json() for row in self.turnaround],
            "skipped": self.skipped,
        }


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0 to 1) of ``values``, interpolating linearly between ranks.

    Raises:
        ValueError: no values, or a fraction outside 0..1.
    """
    if not values:
        raise ValueError("no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be between 0 and 1")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def sla_report(
    stores: Iterable[Store],
    catalog: Catalog,
    clock: Clock,
    *,
    calendar: WorkCalendar | None = None,
) -> SlaReport:
    """The deadline report of the parties whose (open) stores are given.

    Every catalog service a party provides gets a turnaround row, answered or not, and so
    does any other catalog service found in its inbox.

    Raises:
        StoreUnavailable (store-unavailable): a store cannot be read.
    """
    calendar = calendar or kazan_calendar()
    now = clock.now()
    open_requests: list[OpenRequest] = []
    rows: list[Turnaround] = []
    skipped = 0
    for store in stores:
        party = _PartyReport(store.party, catalog, calendar, now)
        requests = await _requests(store, OPEN_INBOX + CLOSED_STATES)
        requests = [r for r in requests if r.received_at <= now]
        answers = await _answer_times(store, [r for r in requests if r.state in CLOSED_STATES])
        for record in requests:
            party.add(record, answers.get(record.message_id))
        open_requests.extend(await _with_waits(store, party.open_requests))
        rows.extend(party.rows())
        skipped += party.skipped
    open_requests.sort(key=lambda r: (r.due_at, r.received_at, r.party, r.message_id))
    return SlaReport(now, tuple(open_requests), tuple(rows), skipped)


class _PartyReport:
    """One party's requests, sorted into open ones and days taken per service."""

    def __init__(self, party: str, catalog: Catalog, calendar: WorkCalendar, now: datetime) -> None:
        self.party = party
        self.catalog = catalog
        self.calendar = calendar
        self.now = now
        self.today = calendar.local_date(now)
        # The newest version's deadline: the inbox keeps the service code, not its version.
        self.services = {
            s.code: catalog.service(s.code) for s in catalog.services if s.provider == party
        }
        self.taken: dict[str, list[int]] = {code: [] for code in self.services}
        self.on_time: dict[str, int] = dict.fromkeys(self.services, 0)
        self.open_requests: list[OpenRequest] = []
        self.skipped = 0

    def add(self, record: InboxRecord, answered_at: datetime | None) -> None:
        """Count one request: open (as of now) or answered, or skipped."""
        service = self.services.get(record.service) or _service(self.catalog, record.service)
        if service is None or (record.state in CLOSED_STATES and answered_at is None):
            self.skipped += 1
            return
        self.services[service.code] = service
        deadline = service.deadline
        if answered_at is None or answered_at > self.now:
            due = self.calendar.due_date(record.received_at, deadline)
            self.open_requests.append(
                OpenRequest(
                    party=self.party,
                    message_id=record.message_id,
                    service=service.code,
                    sender=record.sender,
                    case_id=record.case_id,
                    state=record.state,
                    received_at=record.received_at,
                    deadline=deadline,
                    due_date=due,
                    due_at=self.calendar.end_of(due),
                    days_left=(due - self.today).days,
                )
            )
            return
        days = self.calendar.days_taken(record.received_at, answered_at, deadline)
        self.taken.setdefault(service.code, []).append(days)
        if answered_at < self.calendar.due_at(record.received_at, deadline):
            self.on_time[service.code] = self.on_time.get(service.code, 0) + 1

    def rows(self) -> list[Turnaround]:
        """One turnaround row per service, in catalog order, then services found elsewhere."""
        rows = []
        for code, service in self.services.items():
            days = self.taken.get(code, [])
            waiting = [r for r in self.open_requests if r.service == code]
            rows.append(
                Turnaround(
                    party=self.party,
                    service=code,
                    deadline=service.deadline,
                    answered=len(days),
                    on_time=self.on_time.get(code, 0),
                    median_days=percentile(days, 0.5) if days else None,
                    p90_days=percentile(days, 0.9) if days else None,
                    open=len(waiting),
                    overdue=sum(r.overdue for r in waiting),
                )
            )
        return rows


def _service(catalog: Catalog, code: str) -> Service | None:
    try:
        return catalog.service(code)
    except UnknownService:
        return None


def _deadline_json(deadline: Deadline) -> dict[str, Any]:
    return {"days": deadline.days, "working_days": deadline.working_days}


async def _requests(store: Store, states: Sequence[InboxState]) -> list[InboxRecord]:
    """Every request received in one of ``states`` (all of them: the limit is the count)."""
    found: list[InboxRecord] = []
    for state in states:
        count = await store.count_inbox(state)
        if count:
            records = await store.inbox_by_state(state, limit=count)
            found.extend(r for r in records if r.kind == "request")
    return found


async def _answer_times(store: Store, requests: Sequence[InboxRecord]) -> dict[str, datetime]:
    """When each request's first response or fault was created, by request id."""
    times: dict[str, datetime] = {}

    async def one(record: InboxRecord) -> None:
        answers = [
            sent.created_at
            for sent in await store.outbox_answering(record.message_id)
            if sent.kind in ANSWER_KINDS
        ]
        if answers:
            times[record.message_id] = min(answers)

    for start in range(0, len(requests), _CONCURRENT_READS):
        await asyncio.gather(*(one(r) for r in requests[start : start + _CONCURRENT_READS]))
    return times


async def _with_waits(store: Store, requests: Sequence[OpenRequest]) -> list[OpenRequest]:
    """The open requests, each with what its handler waits on now (parked ones)."""

    async def one(request: OpenRequest) -> OpenRequest:
        if request.state is not InboxState.RECEIVED:
            return request  # handed over or answered since the report's moment: not parked
        return replace(request, waiting_on=await waiting_on(store, request.message_id))

    found: list[OpenRequest] = []
    for start in range(0, len(requests), _CONCURRENT_READS):
        chunk = requests[start : start + _CONCURRENT_READS]
        found.extend(await asyncio.gather(*(one(r) for r in chunk)))
    return found
