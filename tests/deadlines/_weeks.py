"""Five weeks of two providers' requests, written straight into their stores.

Kazan is UTC+3. As of ``AS_OF`` (Wednesday 4 March 2026, 13:00 in Kazan):

improvement, tree-felling-permit (14 calendar days):
  t1 received Mon 2 Feb, answered after 10 days (due 16 Feb): on time
  t2 received Tue 3 Feb, answered after 17 days (due 17 Feb): late
  t3 received Wed 4 Feb, rejected with a fault the same day: on time, 0 days
  t4 received Thu 5 Feb, dead, processing-failed after 14 days (due 19 Feb): on time
  t5 received Fri 6 Feb 23:30, answered Sat 21 Feb 00:30 Kazan time (due 20 Feb): late, 15 days
  t6 received Mon 9 Feb, still open: due 24 Feb (23 Feb is a holiday), 8 days overdue
  t7 received Mon 2 Mar 12:00, waiting: due 16 Mar
  t8 received Mon 2 Mar 11:00, answered on 5 Mar (after AS_OF): open as of AS_OF, due 16 Mar
  t9 received Thu 5 Mar (after AS_OF): left out
  t10 cancelled: counts nowhere
improvement, stormwater-conditions (14 working days):
  s1 received Mon 2 Feb, answered Fri 13 Feb: 9 working days, on time (due 20 Feb)
  s2 received Wed 11 Feb, open: due 4 Mar (23 Feb is a holiday), due today
improvement, a service the catalog does not know: rejected at once; skipped
urban-permits, excavation-permit (10 working days):
  u1 received Mon 16 Feb, waiting: due 3 Mar, 1 day overdue
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exchange.node.store import InboxRecord, InboxState, OutboxRecord, OutboxState, Store

AS_OF = datetime(2026, 3, 4, 10, tzinfo=UTC)


def utc(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    """A UTC time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Request:
    """A request as received, and the answer it got (if any)."""

    message_id: str
    service: str
    received_at: datetime
    state: InboxState
    answer: str | None = None  # "response" or "fault"
    answered_at: datetime | None = None


IMPROVEMENT = (
    Request("t1", "tree-felling-permit", utc(2, 2), InboxState.ANSWERED, "response", utc(2, 12)),
    Request("t2", "tree-felling-permit", utc(2, 3), InboxState.ANSWERED, "response", utc(2, 20)),
    Request("t3", "tree-felling-permit", utc(2, 4), InboxState.REJECTED, "fault", utc(2, 4, 9, 5)),
    Request("t4", "tree-felling-permit", utc(2, 5), InboxState.DEAD, "fault", utc(2, 19)),
    Request(
        "t5",
        "tree-felling-permit",
        utc(2, 6, 20, 30),
        InboxState.ANSWERED,
        "response",
        utc(2, 20, 21, 30),
    ),
    Request("t6", "tree-felling-permit", utc(2, 9), InboxState.RECEIVED),
    Request("t7", "tree-felling-permit", utc(3, 2), InboxState.WAITING),
    Request("t8", "tree-felling-permit", utc(3, 2, 8), InboxState.ANSWERED, "response", utc(3, 5)),
    Request("t9", "tree-felling-permit", utc(3, 5), InboxState.RECEIVED),
    Request("t10", "tree-felling-permit", utc(2, 10), InboxState.CANCELLED),
    Request("s1", "stormwater-conditions", utc(2, 2), InboxState.ANSWERED, "response", utc(2, 13)),
    Request("s2", "stormwater-conditions", utc(2, 11), InboxState.RECEIVED),
    Request("x1", "no-such-service", utc(2, 3), InboxState.REJECTED, "fault", utc(2, 3)),
)
URBAN_PERMITS = (Request("u1", "excavation-permit", utc(2, 16), InboxState.WAITING),)


def _inbox(request: Request) -> InboxRecord:
    return InboxRecord(
        message_id=request.message_id,
        kind="request",
        sender="single-center",
        service=request.service,
        correlation_id=None,
        case_id=f"case-{request.message_id}",
        wire=b"<request/>",
        digest="a" * 64,
        received_at=request.received_at,
        expires_at=request.received_at + timedelta(days=3),
        state=request.state,
    )


def _outbox(request: Request, kind: str, at: datetime) -> OutboxRecord:
    return OutboxRecord(
        message_id=f"{request.message_id}-{kind}",
        kind=kind,
        recipient="single-center",
        service=request.service,
        correlation_id=request.message_id,
        case_id=f"case-{request.message_id}",
        wire=b"<answer/>",
        digest="b" * 64,
        created_at=at,
        expires_at=at + timedelta(days=3),
        state=OutboxState.DONE,
    )


async def write(store: Store, requests: tuple[Request, ...]) -> None:
    """Each request with its receipt, a status a day later, and its answer, as a node would."""
    for request in requests:
        async with store.transaction() as tx:
            tx.add_inbox(_inbox(request))
            tx.add_outbox(_outbox(request, "receipt", request.received_at))
            # A receipt from a caller is kept too: not a request, never reported.
            tx.add_inbox(
                InboxRecord(
                    message_id=f"{request.message_id}-noted",
                    kind="receipt",
                    sender="single-center",
                    service=request.service,
                    correlation_id=request.message_id,
                    case_id=None,
                    wire=b"<receipt/>",
                    digest="c" * 64,
                    received_at=request.received_at,
                    expires_at=request.received_at + timedelta(days=3),
                    state=InboxState.NOTED,
                )
            )
        status_at = request.received_at + timedelta(days=1)
        async with store.transaction() as tx:
            tx.add_outbox(_outbox(request, "status", status_at))
            if request.answer is not None and request.answered_at is not None:
                tx.add_outbox(_outbox(request, request.answer, request.answered_at))
