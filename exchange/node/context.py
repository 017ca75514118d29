"""What every stage of a node shares: who it is, its keys, its store and its bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from exchange._clock import Clock
from exchange.attachments.store import AttachmentStore
from exchange.catalog import Catalog
from exchange.envelope.model import Envelope
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.config import NodeConfig
from exchange.node.store.base import InboxRecord, OutboxRecord, Store
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.transport.base import Transport
from exchange.transport.names import BusNames


@dataclass
class NodeContext:
    """The collaborators of one party's node."""

    party: str
    catalog: Catalog
    credentials: Credentials
    trust: TrustStore
    store: Store
    bus: Transport
    names: BusNames
    clock: Clock
    attachments: AttachmentStore
    config: NodeConfig = field(default_factory=NodeConfig)
    _logger: Any = field(default=None, init=False, repr=False)

    def log(self, envelope: Envelope | None = None, **extra: Any) -> Any:
        """A logger with the party and the envelope's ids bound."""
        if self._logger is None:
            self._logger = structlog.get_logger("exchange.node").bind(party=self.party)
        logger = self._logger.bind(**extra) if extra else self._logger
        if envelope is not None:
            logger = logger.bind(
                message_id=envelope.message_id,
                correlation_id=envelope.correlation_id,
                case_id=envelope.case_id,
            )
        return logger


def audit_event(
    event: EventName, envelope: Envelope, digest: str | None = None, **detail: Any
) -> AuditEvent:
    """An audit event about one envelope."""
    return AuditEvent(
        event=event,
        message_id=envelope.message_id,
        correlation_id=envelope.correlation_id,
        case_id=envelope.case_id,
        service=envelope.service.code,
        kind=envelope.kind.value,
        digest=digest,
        detail=detail,
    )


def record_event(event: EventName, record: OutboxRecord | InboxRecord, **detail: Any) -> AuditEvent:
    """An audit event about one stored message (no need to decode its envelope)."""
    return AuditEvent(
        event=event,
        message_id=record.message_id,
        correlation_id=record.correlation_id,
        case_id=record.case_id,
        service=record.service,
        kind=record.kind,
        digest=record.digest,
        detail=detail,
    )
