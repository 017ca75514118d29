"""The audit vocabulary: every step a node records, and the event and record types.

A leaf of the package: node, audit, connectors and the CLI all import it, and it imports
none of them. An event's name is its ``EventName``; the chain hashes the name's text, so a
member's value never changes once records carry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventName(StrEnum):
    """What happened to a message, as its party's audit chain says it."""

    # A message this party sends.
    CREATED = "created"  # a request signed and stored in the outbox
    CONFIRMED = "confirmed"  # the broker confirmed the publish
    RESENT = "resent"  # published again (no receipt yet, or confirm lost)
    UNDELIVERED = "undelivered"  # no receipt until the request expired: final
    CANCEL_SENT = "cancel-sent"
    RECEIPT_SENT = "receipt-sent"
    STATUS_SENT = "status-sent"
    RESPONDED = "responded"  # a response sent
    FAULT_SENT = "fault-sent"
    DEAD_LETTERED = "dead-lettered"  # processing-failed sent after the retry limit

    # A request this party received.
    RECEIVED = "received"
    DUPLICATE = "duplicate"  # the same message again (a request: its answers resent)
    REJECTED = "rejected"  # refused with a signed fault (expired, access, schema ...)
    CANCELLED = "cancelled"  # its sender cancelled it
    HANDED_OVER = "handed-over"  # to the departmental system, which answers later
    RETRIED = "retried"  # the handler failed; it runs again later
    WAITING = "waiting"  # the handler waits for another request's answer or the broker
    RESUMED = "resumed"  # what a waiting request waited on came: the handler runs again
    OVERDUE = "overdue"  # open past its regulated deadline; the requester was told once
    # a broker dead letter (never stored, never answered) put back in the inbox by an admin
    # command; a request dead in the store has its final answer and is never replayed
    REPLAYED = "replayed"
    # a delivery the broker dead-lettered (past its delivery limit) before the store had it:
    # waiting in the party's dead-letter queue for an admin's replay; noted once per death
    BROKER_DEAD_LETTER = "broker-dead-letter"
    ANSWERED = "answered"  # closed by a response
    DEAD = "dead"  # closed after the handler failed past the retry limit
    EXPIRED = "expired"  # closed because it expired unanswered

    # An answer to a request this party sent.
    RECEIPT_RECEIVED = "receipt-received"
    STATUS_RECEIVED = "status-received"
    RESPONSE_RECEIVED = "response-received"
    FAULT_RECEIVED = "fault-received"
    LATE_ANSWER = "late-answer"  # a status, response or fault after the final answer

    # What is not processed, and housekeeping.
    IGNORED = "ignored"  # verified, but not for us to act on (no fault sent back)
    QUARANTINED = "quarantined"  # could not be verified or attributed
    CONTENT_PRUNED = "content-pruned"  # finished messages' wire bytes removed
    # Admin commands (signed by the console), as the party's node carried them out.
    ADMIN_COMMAND = "admin-command"  # a verified command: who asked what (then its outcome)
    REPLAY_REFUSED = "replay-refused"  # a replay the party's rules refused (already final ...)
    # the collector's own chain
    HEAD_ACKNOWLEDGED = "head-acknowledged"  # a party's head, acknowledged with a signed ack

    @classmethod
    def received(cls, kind: str) -> EventName:
        """The event of an answer of ``kind`` (receipt, status, response, fault) arriving.

        Raises:
            ValueError: ``kind`` is not an answer kind.
        """
        return cls(f"{kind}-received")


ANSWER_RECEIVED = frozenset(
    {
        EventName.RECEIPT_RECEIVED,
        EventName.STATUS_RECEIVED,
        EventName.RESPONSE_RECEIVED,
        EventName.FAULT_RECEIVED,
        EventName.LATE_ANSWER,
    }
)
"""Events of an answer arriving at the party that sent the request (late ones included)."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One step of one message, as a node records it."""

    event: EventName
    message_id: str | None = None
    correlation_id: str | None = None
    case_id: str | None = None
    service: str | None = None
    kind: str | None = None
    digest: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An audit event as stored: numbered, timed and chained to its predecessor."""

    seq: int
    at: datetime
    party: str
    event: AuditEvent
    prev_hash: str
    hash: str
