"""What a node cannot verify or attribute: kept in the quarantine queue and audited, never
answered (no fault is reflected onto a party that may not have sent it)."""

from __future__ import annotations

from typing import Any

from exchange.exceptions import ExchangeError
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.context import NodeContext
from exchange.signing import digest


async def quarantine(ctx: NodeContext, raw: bytes, error: ExchangeError, **detail: Any) -> None:
    """Publish ``raw`` to the quarantine queue, then audit it with the refusal's code.

    Raises:
        TransportError subclasses: not quarantined (the caller keeps the delivery).
        StoreError subclasses: quarantined, not audited.
    """
    raw_digest = digest(raw)
    await ctx.bus.publish(
        ctx.names.bus,
        ctx.names.quarantine,
        raw,
        content_type="application/octet-stream",
        message_type=f"quarantined:{ctx.party}:{error.code}",
    )
    async with ctx.store.transaction() as tx:
        tx.audit(
            AuditEvent(
                EventName.QUARANTINED,
                digest=raw_digest,
                detail={
                    "code": error.code,
                    "reason": error.message[:1000],
                    "size": len(raw),
                    **detail,
                },
            )
        )
    ctx.log().warning("inbound.quarantined", code=error.code, digest=raw_digest, **detail)
