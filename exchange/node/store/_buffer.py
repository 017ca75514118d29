"""The in-memory side of a store transaction: operations buffered until the block exits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from exchange.ledger.event import AuditEvent
from exchange.node.store.base import InboxRecord, InboxState, OutboxRecord, OutboxState


@dataclass(frozen=True, slots=True)
class SetOutboxState:
    """Move an outgoing message on; ``None`` leaves a field as it is."""

    message_id: str
    state: OutboxState
    attempts: int | None
    next_attempt_at: datetime | None
    only_from: tuple[OutboxState, ...] | None


@dataclass(frozen=True, slots=True)
class SetInboxState:
    """Move a received message on; ``None`` leaves a field as it is."""

    message_id: str
    state: InboxState
    attempts: int | None
    next_attempt_at: datetime | None
    only_from: tuple[InboxState, ...] | None


@dataclass(frozen=True, slots=True)
class PutMeta:
    """Set a key of the store's meta table (e.g. the audit shipper's cursor)."""

    key: str
    value: str
    only_new: bool = False  # the commit raises StateConflict if the key is set already


@dataclass(frozen=True, slots=True)
class PutCheckpoint:
    """Keep a signed audit document at ``seq`` (a checkpoint, or with ``acknowledgment`` the
    collector's head acknowledgment); a second one at the same seq is ignored."""

    seq: int
    body: bytes
    acknowledgment: bool = False


@dataclass(slots=True)
class PruneWire:
    """Empty the wire of up to ``limit`` finished messages per table older than ``older_than``.

    The writer sets ``outbox`` and ``inbox`` to how many it emptied, and audits them in the
    same transaction (``_rows.pruned_event``).
    """

    older_than: datetime
    outbox_states: tuple[OutboxState, ...]
    inbox_states: tuple[InboxState, ...]
    limit: int
    outbox: int = 0
    inbox: int = 0


@dataclass(frozen=True, slots=True)
class HoldClaim:
    """The transaction commits only while ``owner`` still holds the request's claim (else
    LeaseLost, and nothing is written); with ``release`` the claim ends with it."""

    message_id: str
    owner: str
    release: bool = True


@dataclass(slots=True)
class ClaimDue:
    """Claim up to ``limit`` due requests for ``owner`` until ``until`` (SQLite's writer runs
    it; ``claimed`` gets the records, each with its owner and takeover count)."""

    owner: str
    now: datetime
    until: datetime
    limit: int
    ordered: tuple[str, ...]
    services: tuple[str, ...] | None = None
    claimed: list[InboxRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RenewClaims:
    """Move the lease of every claim ``owner`` holds on to ``until``."""

    owner: str
    until: datetime


@dataclass(slots=True)
class TakeLease:
    """Hold the lease ``name`` for ``owner`` until ``until`` if it is free, expired at ``now``
    or ``owner``'s (SQLite's writer runs it; ``held`` gets the outcome)."""

    name: str
    owner: str
    now: datetime
    until: datetime
    held: bool = False


# Every operation but an insert: what each store's apply step runs one by one.
StateChange = (
    SetOutboxState
    | SetInboxState
    | PutMeta
    | PutCheckpoint
    | PruneWire
    | HoldClaim
    | ClaimDue
    | RenewClaims
    | TakeLease
)
Operation = OutboxRecord | InboxRecord | StateChange


@dataclass(slots=True)
class TransactionBuffer:
    """Implements ``Transaction``: collects operations and audit events, in call order."""

    operations: list[Operation] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)
    closed: bool = False

    def add_outbox(self, record: OutboxRecord) -> None:
        """Store a new outgoing message."""
        self._check_open()
        self.operations.append(record)

    def set_outbox_state(
        self,
        message_id: str,
        state: OutboxState,
        *,
        attempts: int | None = None,
        next_attempt_at: datetime | None = None,
        only_from: tuple[OutboxState, ...] | None = None,
    ) -> None:
        """Move an outgoing message on; ``None`` keeps a stored value.

        With ``only_from``, the commit raises StateConflict unless it is in one of those states.
        """
        self._check_open()
        self.operations.append(
            SetOutboxState(message_id, state, attempts, next_attempt_at, only_from)
        )

    def add_inbox(self, record: InboxRecord) -> None:
        """Store a received message; the commit raises DuplicateMessage if it is there."""
        self._check_open()
        self.operations.append(record)

    def set_inbox_state(
        self,
        message_id: str,
        state: InboxState,
        *,
        attempts: int | None = None,
        next_attempt_at: datetime | None = None,
        only_from: tuple[InboxState, ...] | None = None,
    ) -> None:
        """Move a received message on; ``None`` keeps a stored value.

        With ``only_from``, the commit raises StateConflict unless it is in one of those states.
        """
        self._check_open()
        self.operations.append(
            SetInboxState(message_id, state, attempts, next_attempt_at, only_from)
        )

    def audit(self, event: AuditEvent) -> None:
        """Append to this party's hash chain (seq, time and hash are set at commit)."""
        self._check_open()
        self.events.append(event)

    def hold_claim(self, message_id: str, owner: str, *, release: bool = True) -> None:
        """Commit only while ``owner`` holds the request's claim (else LeaseLost); with
        ``release`` the claim ends with the commit."""
        self._check_open()
        self.operations.append(HoldClaim(message_id, owner, release))

    def put_meta(self, key: str, value: str, *, only_new: bool = False) -> None:
        """Set a key of the store's meta table along with the transaction's other changes.

        With ``only_new``, the commit raises StateConflict (nothing written) if it is set.
        """
        self._check_open()
        self.operations.append(PutMeta(key, value, only_new))

    def put_checkpoint(self, seq: int, body: bytes, *, acknowledgment: bool = False) -> None:
        """Keep a signed checkpoint or acknowledgment (not part of the Transaction protocol)."""
        self._check_open()
        self.operations.append(PutCheckpoint(seq, body, acknowledgment))

    def prune_wire(self, op: PruneWire) -> None:
        """Prune message content (not part of the Transaction protocol)."""
        self._check_open()
        self.operations.append(op)

    def empty(self) -> bool:
        """True when there is nothing to write."""
        return not self.operations and not self.events

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this transaction has already ended; open a new one")
