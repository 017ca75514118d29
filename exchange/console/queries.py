"""What the console's pages ask of the central log: search, a case, the deadline board, the
dead letters; each answer is plain data the views render.

Everything is read from the collector's central log (``CentralStore``), never from party
stores: support sees what the parties' signed audit chains say. Deadlines come from the
catalog and the working-day calendar, "now" from the console's clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from exchange._clock import Clock
from exchange.audit.central import CentralStore, RecordQuery
from exchange.audit.trace import Timeline, Wait, trace
from exchange.catalog import Catalog, Deadline
from exchange.exceptions import UnknownService
from exchange.ledger.chain import record_hash
from exchange.ledger.event import AuditRecord, EventName
from exchange.workdays.calendar import WorkCalendar, kazan_calendar

# Events that close a request at its provider (their message_id is the request's).
CLOSING = (
    EventName.ANSWERED,
    EventName.DEAD,
    EventName.REJECTED,
    EventName.CANCELLED,
    EventName.EXPIRED,
)
ANSWERED = (EventName.ANSWERED, EventName.DEAD)  # closed by a response or processing-failed
# "dead" closes the same request as "dead-lettered"; a broker dead letter was never stored.
DEAD_LETTERS = (EventName.DEAD_LETTERED, EventName.BROKER_DEAD_LETTER, EventName.QUARANTINED)
BOARD_LIMIT = 5_000  # newest received requests the board looks at
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of search results, newest first."""

    records: Sequence[AuditRecord]
    page: int
    has_more: bool


@dataclass(frozen=True, slots=True)
class Hold:
    """One department holding one request of a case (``Wait``), against its deadline."""

    wait: Wait
    deadline: Deadline | None
    due_at: datetime | None

    @property
    def overdue(self) -> bool:
        """Unanswered past its due moment, or answered after it."""
        if self.due_at is None:
            return False
        end = self.wait.answered_at or datetime.max.replace(tzinfo=self.due_at.tzinfo)
        return end > self.due_at


@dataclass(slots=True)
class CaseView:
    """A case's (or message's) timeline, holds and each record's verification result."""

    timeline: Timeline
    holds: list[Hold]
    verdicts: dict[tuple[str, int], str]


@dataclass(frozen=True, slots=True)
class OpenItem:
    """An open request on the deadline board."""

    party: str
    service: str
    message_id: str
    case_id: str | None
    received_at: datetime
    due_at: datetime
    deadline: Deadline
    now: datetime

    @property
    def overdue(self) -> bool:
        """Past the end of its due date."""
        return self.now > self.due_at


@dataclass(slots=True)
class TurnRow:
    """Turnaround of one service at its provider, in the deadline's unit of days."""

    party: str
    service: str
    deadline: Deadline
    days: list[int] = field(default_factory=list)
    open: int = 0
    overdue: int = 0

    @property
    def median(self) -> float | None:
        """Median days taken, None when nothing was answered."""
        return statistics.median(self.days) if self.days else None


@dataclass(slots=True)
class Board:
    """The deadline board: open requests (overdue first, then by due date) and turnaround."""

    open: list[OpenItem]
    turnaround: list[TurnRow]
    now: datetime


class ConsoleQueries:
    """The console's read side over the central log."""

    def __init__(
        self,
        central: CentralStore,
        catalog: Catalog,
        clock: Clock,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.central = central
        self.catalog = catalog
        self.clock = clock
        self.calendar = calendar or kazan_calendar()

    async def search(self, query: RecordQuery, page: int, size: int) -> SearchPage:
        """Page ``page`` (from 1) of the records matching ``query``."""
        page = max(page, 1)
        found = await self.central.search(query, offset=(page - 1) * size, limit=size + 1)
        return SearchPage(found[:size], page, len(found) > size)

    async def case(self, ident: str) -> CaseView:
        """The timeline of a case id or message id, who held it and each record's check."""
        now = self.clock.now()
        timeline = await trace(self.central, ident, now)
        holds = [self._hold(wait) for wait in timeline.waits]
        verdicts: dict[tuple[str, int], str] = {}
        parties = {r.party for r in timeline.steps}
        # One read of the (small) findings table, not one per party: the page's extra cost
        # over the trace stays one query.
        findings = {
            (f.party, f.seq): f.kind for f in await self.central.findings() if f.party in parties
        }
        for record in timeline.steps:
            key = (record.party, record.seq)
            if record_hash(record) != record.hash:
                verdicts[key] = "hash mismatch"
            else:
                verdicts[key] = findings.get(key, "verified")
        return CaseView(timeline, holds, verdicts)

    def _hold(self, wait: Wait) -> Hold:
        deadline = self._deadline(wait.service)
        due_at = None if deadline is None else self.calendar.due_at(wait.received_at, deadline)
        return Hold(wait, deadline, due_at)

    def _deadline(self, service: str | None) -> Deadline | None:
        if service is None:
            return None
        try:
            return self.catalog.service(service).deadline
        except UnknownService:
            return None

    async def board(self) -> Board:
        """Open requests by due date per department and service; turnaround per service."""
        now = self.clock.now()
        received = [
            r
            for r in await self.central.search(
                RecordQuery(events=(EventName.RECEIVED,), until=now), limit=BOARD_LIMIT
            )
            if r.event.kind == "request" and r.event.message_id
        ]
        closed = await self._closed([r.event.message_id or "" for r in received], now)
        rows: dict[tuple[str, str], TurnRow] = {}
        for service in self.catalog.services:
            rows.setdefault(
                (service.provider, service.code),
                TurnRow(
                    service.provider, service.code, self.catalog.service(service.code).deadline
                ),
            )
        items: list[OpenItem] = []
        for record in received:
            deadline = self._deadline(record.event.service)
            if deadline is None or record.event.service is None:
                continue
            key = (record.party, record.event.service)
            row = rows.setdefault(key, TurnRow(record.party, record.event.service, deadline))
            mid = record.event.message_id or ""
            end = closed.get((record.party, mid))
            if end is None:
                due = self.calendar.due_at(record.at, deadline)
                item = OpenItem(
                    record.party, key[1], mid, record.event.case_id, record.at, due, deadline, now
                )
                items.append(item)
                row.open += 1
                row.overdue += item.overdue
            elif end[1]:
                row.days.append(self.calendar.days_taken(record.at, end[0], deadline))
        items.sort(key=lambda i: (not i.overdue, i.due_at, i.party, i.service))
        return Board(items, list(rows.values()), now)

    async def _closed(
        self, request_ids: Sequence[str], now: datetime
    ) -> dict[tuple[str, str], tuple[datetime, bool]]:
        """(party, request id) -> when it closed, and whether by an answer."""
        closed: dict[tuple[str, str], tuple[datetime, bool]] = {}
        for start in range(0, len(request_ids), _CHUNK):
            for r in await self.central.related(request_ids[start : start + _CHUNK]):
                if r.event.event in CLOSING and r.event.message_id and r.at <= now:
                    key = (r.party, r.event.message_id)
                    if key not in closed or r.at < closed[key][0]:
                        closed[key] = (r.at, r.event.event in ANSWERED)
        return closed

    async def dead_letters(self) -> dict[str, list[AuditRecord]]:
        """Dead-lettered requests and quarantined deliveries, per party, newest first."""
        found: dict[str, list[AuditRecord]] = {}
        query = RecordQuery(events=tuple(DEAD_LETTERS))
        for record in await self.central.search(query, limit=BOARD_LIMIT):
            found.setdefault(record.party, []).append(record)
        return dict(sorted(found.items()))


def request_of(record: AuditRecord) -> str | None:
    """The request a dead-letter record is about (a fault names it as its correlation id)."""
    if record.event.kind == "fault" and record.event.correlation_id:
        return record.event.correlation_id
    return record.event.message_id
