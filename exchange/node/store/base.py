"""The party's store: outbox, inbox (the dedupe set) and the hash-chained audit log.

One interface, SQLite and PostgreSQL behind it. Every business change and its audit event
commit in one transaction: a crash can never leave one without the other.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from exchange.ledger.event import AuditEvent, AuditRecord


class OutboxState(StrEnum):
    """Where a message this party sent stands."""

    PENDING = "pending"  # stored; the broker has not confirmed it yet
    SENT = "sent"  # confirmed by the broker; no receipt yet (requests only)
    RECEIPTED = "receipted"  # the recipient's signed receipt arrived
    ANSWERED = "answered"  # a response or fault closed it
    UNDELIVERED = "undelivered"  # no receipt until it expired: final
    DONE = "done"  # a non-request message (receipt, response, fault ...) the broker confirmed


class InboxState(StrEnum):
    """Where a request this party received stands."""

    RECEIVED = "received"  # durable and receipted; waiting for (or between) handler runs
    WAITING = "waiting"  # handed to the departmental system, which answers later
    ANSWERED = "answered"  # a response or fault was committed
    REJECTED = "rejected"  # refused (expired, access, schema) with a signed fault
    DEAD = "dead"  # the handler failed past the retry limit; processing-failed sent
    CANCELLED = "cancelled"  # the sender cancelled it before it was answered
    EXPIRED = "expired"  # it expired before it was answered
    NOTED = "noted"  # not a request (receipt, status, response ...): kept for the record
    LATE = "late"  # a status, response or fault after the final answer: kept, not passed on


OPEN_INBOX = (InboxState.RECEIVED, InboxState.WAITING)
"""Received requests still to be answered: the only states a final answer may close."""
FINISHED_OUTBOX = frozenset({OutboxState.DONE, OutboxState.ANSWERED, OutboxState.UNDELIVERED})
"""Outgoing messages nothing will send again: their wire bytes may be pruned."""
FINISHED_INBOX = frozenset(
    {
        InboxState.ANSWERED,
        InboxState.REJECTED,
        InboxState.DEAD,
        InboxState.CANCELLED,
        InboxState.EXPIRED,
        InboxState.NOTED,
        InboxState.LATE,
    }
)
"""Received messages no handler will read again: their wire bytes may be pruned."""
PRUNED = b""
"""The wire of a message whose content was pruned (its row, digest and audit records stay)."""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A message this party signed, exactly as it goes on the wire."""

    message_id: str
    kind: str
    recipient: str
    service: str
    correlation_id: str | None
    case_id: str | None
    wire: bytes
    digest: str
    created_at: datetime
    expires_at: datetime
    state: OutboxState = OutboxState.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """A verified message this party received, exactly as it came off the wire."""

    message_id: str
    kind: str
    sender: str
    service: str
    correlation_id: str | None
    case_id: str | None
    wire: bytes
    digest: str
    received_at: datetime
    expires_at: datetime
    state: InboxState = InboxState.RECEIVED
    attempts: int = 0
    next_attempt_at: datetime | None = None
    receipt_wire: bytes | None = None  # resent as-is when the same request arrives again
    # Set only on a record a worker claimed (``Store.claim_inbox``): who holds the claim, and
    # how often a claim of a dead process was taken over (each a re-run of the handler).
    claim_owner: str | None = None
    takeovers: int = 0


class Transaction(Protocol):
    """Changes buffered in memory, written together when the ``async with`` block exits.

    Buffering lets the SQLite store group many transactions into one commit (one fsync).
    """

    def add_outbox(self, record: OutboxRecord) -> None:
        """Store a new outgoing message."""

    def set_outbox_state(
        self,
        message_id: str,
        state: OutboxState,
        *,
        attempts: int | None = None,
        next_attempt_at: datetime | None = None,
        only_from: tuple[OutboxState, ...] | None = None,
    ) -> None:
        """Move an outgoing message on (and reschedule it).

        With ``only_from``, the commit raises StateConflict (and writes nothing) unless the
        record is in one of those states: how answers stay effectively once.
        """

    def add_inbox(self, record: InboxRecord) -> None:
        """Store a received message; the commit raises DuplicateMessage if it is there."""

    def set_inbox_state(
        self,
        message_id: str,
        state: InboxState,
        *,
        attempts: int | None = None,
        next_attempt_at: datetime | None = None,
        only_from: tuple[InboxState, ...] | None = None,
    ) -> None:
        """Move a received message on (and reschedule it).

        With ``only_from``, the commit raises StateConflict (and writes nothing) unless the
        record is in one of those states: how answers stay effectively once.
        """

    def audit(self, event: AuditEvent) -> None:
        """Append to this party's hash chain (seq, time and hash are set at commit)."""

    def hold_claim(self, message_id: str, owner: str, *, release: bool = True) -> None:
        """Commit only while ``owner`` still holds the request's claim.

        The commit raises LeaseLost (and writes nothing) when another process took the claim
        over; with ``release`` the claim ends with the commit.
        """

    def put_meta(self, key: str, value: str, *, only_new: bool = False) -> None:
        """Set a key of the store's meta table along with the transaction's other changes.

        With ``only_new``, the commit raises StateConflict (and writes nothing) if the key
        is set already: insert-or-fail in one statement, so that of several processes doing
        the same thing once, exactly one commits.
        """


class Store(Protocol):
    """A party's durable state."""

    party: str

    async def open(self) -> None:
        """Connect and create the tables if needed."""

    async def close(self) -> None:
        """Flush and disconnect."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction: written and committed on normal exit, dropped on an exception.

        Raises (on exit):
            DuplicateMessage (duplicate): an ``add_inbox`` message_id is already stored;
                nothing of the transaction was written.
            StoreUnavailable (store-unavailable): the store cannot be written.
        """

    async def get_outbox(self, message_id: str) -> OutboxRecord | None:
        """One outgoing message, or None."""

    async def get_inbox(self, message_id: str) -> InboxRecord | None:
        """One received message, or None."""

    async def wires(self, message_ids: Collection[str]) -> dict[str, bytes]:
        """The stored wire bytes of the messages ``message_ids`` (sent or received), keyed
        by their digests, in one read; pruned content is left out."""

    async def due_outbox(self, now: datetime, limit: int = 100) -> Sequence[OutboxRecord]:
        """PENDING and SENT messages whose next_attempt_at is unset or has come, oldest first.

        A new message's next_attempt_at is its publish grace: the relay leaves it alone
        while its first publish may still be in flight.
        """

    async def claim_inbox(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int = 100,
        ordered: Collection[str] = (),
        services: Collection[str] | None = None,
    ) -> Sequence[InboxRecord]:
        """Claim due requests for ``owner`` until ``now + lease``, in one atomic step.

        Only requests of ``services`` (when given: those with a handler in this process;
        the departmental system answers the others) are claimed.

        Due: RECEIVED, next_attempt_at unset or come, and unclaimed, or claimed by another
        owner whose lease has expired (a takeover: the record's ``takeovers`` counts it).
        For services in ``ordered``, a request is held back while an older request of its
        case and service is still open. Oldest first; each record carries ``claim_owner``.
        """

    async def renew_claims(self, owner: str, until: datetime) -> None:
        """Extend every claim ``owner`` holds to ``until`` (its handlers are still running)."""

    async def release_claim(self, owner: str, message_id: str) -> None:
        """End ``owner``'s claim of a request without changing it (its run ended unfinished)."""

    async def take_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Hold the lease ``name`` for ``owner`` until ``until``, in one atomic step, if it is
        free, expired at ``now`` or ``owner``'s already; return whether ``owner`` holds it.

        A party's processes share a task that must run in one of them at a time (the audit
        shipper) this way; an ``until`` not after ``now`` gives a held lease up.
        """

    async def inbox_for(self, correlation_id: str) -> Sequence[InboxRecord]:
        """Messages received that refer to the request ``correlation_id`` (receipts, answers)."""

    async def inbox_by_state(self, state: InboxState, limit: int = 1000) -> Sequence[InboxRecord]:
        """Received messages in a state (e.g. DEAD for ``exchange dlq list``)."""

    async def outbox_answering(self, correlation_id: str) -> Sequence[OutboxRecord]:
        """Messages this party sent that answer the request ``correlation_id``."""

    async def audit(self, since_seq: int = 0, limit: int = 10_000) -> Sequence[AuditRecord]:
        """Audit records with seq > since_seq, in order."""

    async def audit_head(self) -> tuple[int, str] | None:
        """The (seq, hash) of the last audit record, or None while the chain is empty."""

    async def count_inbox(self, state: InboxState | None = None) -> int:
        """How many received messages (in a state)."""

    async def count_outbox(self, state: OutboxState | None = None) -> int:
        """How many messages this party signed (in a state): the outbox depth of metrics."""

    async def get_meta(self, key: str) -> str | None:
        """A value of the store's meta table (e.g. the audit shipper's cursor), or None."""

    async def set_meta(self, key: str, value: str) -> None:
        """Set a meta value durably (committed when this returns)."""

    async def add_checkpoint(self, seq: int, body: bytes) -> None:
        """Keep a signed audit checkpoint at ``seq`` durably; an existing one at seq is kept."""

    async def prune_messages(
        self,
        older_than: datetime,
        *,
        outbox_states: Collection[OutboxState] = FINISHED_OUTBOX,
        inbox_states: Collection[InboxState] = FINISHED_INBOX,
    ) -> int:
        """Replace with ``PRUNED`` the wire of finished messages older than ``older_than``.

        Outgoing messages count from ``created_at``, received ones from ``received_at``. The
        rows stay (a pruned request still dedupes), with their digests and receipts; the
        audit chain is never touched, but gains a ``content-pruned`` record per batch.
        Return how many messages were pruned now (already pruned ones are not counted).

        Raises:
            ValueError: a state is not finished (open messages are still read).
            StoreUnavailable (store-unavailable): the store cannot be written.
        """

    async def add_ack(self, seq: int, body: bytes) -> None:
        """Keep the collector's signed head acknowledgment of ``seq`` durably (the first one
        at a seq is kept): the party's witness of how far the central log holds its chain."""

    async def acks(self, since_seq: int = 0, limit: int = 1000) -> Sequence[tuple[int, bytes]]:
        """The collector's acknowledgments (seq, body) with seq > since_seq, in seq order."""

    async def checkpoints(
        self, since_seq: int = 0, limit: int = 1000
    ) -> Sequence[tuple[int, bytes]]:
        """Signed checkpoints (seq, body) with seq > since_seq, in seq order."""
