"""The census of a party's broker dead letters: each noted once in the audit log.

A delivery the broker dead-letters (past the inbox's delivery limit: a node that kept failing
on it) never reached the store, so nothing audited says it exists. Every so often a node
looks at its dead-letter queue without taking anything (the letters go back as they were)
and audits each letter it has not noted yet, with the broker's reason: so support sees it on
the console beside everything else, and an admin can replay it (a signed command that this
node carries out: ``AdminCommands.replay``). What the letter says about itself is recorded
only if it verifies as an envelope; otherwise only its digest, size and the refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from exchange.exceptions import ExchangeError, StateConflict
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.admin import Verify
from exchange.node.context import NodeContext, audit_event
from exchange.signing import digest
from exchange.transport.admin import dead_letters

NOTED = "dead-letter.noted."
"""Store meta key prefix: a letter's digest and the time it died, once it was audited."""
CENSUS_LIMIT = 1000  # letters looked at per census (they are held unacked meanwhile)


class DeadLetterCensus:
    """Looks at the party's dead-letter queue now and then; audits each new letter once."""

    def __init__(
        self, context: NodeContext, verify: Verify, interval: float, lock: asyncio.Lock
    ) -> None:
        """``verify`` is the inbox's envelope verification; ``interval`` is in seconds;
        ``lock`` is held while looking (a replay of this process waits for it)."""
        self.ctx = context
        self.verify = verify
        self.interval = interval
        self.lock = lock

    async def run(self) -> None:
        """Take a census every ``interval`` seconds (the first after one) until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.census()
            except ExchangeError as exc:  # broker or store away: the next census catches up
                self.ctx.log().warning("dead_letters.census_failed", error=exc.message)

    async def census(self) -> int:
        """Audit the letters not noted before; return how many were noted now.

        Raises:
            BrokerUnavailable, StoreError subclasses: nothing more is noted this time.
        """
        ctx = self.ctx
        async with self.lock:
            letters = await dead_letters(
                ctx.bus.url, ctx.names, ctx.party, take=False, limit=CENSUS_LIMIT
            )
        noted = 0
        for body, headers in letters:
            death = first_death(headers)
            raw_digest = digest(body)
            key = f"{NOTED}{raw_digest}.{death.get('time', '')}"
            if await ctx.store.get_meta(key) is not None:
                continue  # noted at an earlier census: not verified again every time
            event = await self._event(body, raw_digest, death)
            try:
                async with ctx.store.transaction() as tx:
                    tx.put_meta(key, event.event.value, only_new=True)
                    tx.audit(event)
            except StateConflict:
                continue  # another process of the party noted it meanwhile
            noted += 1
            ctx.log().warning(
                "dead_letters.noted",
                digest=raw_digest,
                message_id=event.message_id,
                reason=death.get("reason"),
            )
        return noted

    async def _event(self, body: bytes, raw_digest: str, death: Mapping[str, Any]) -> AuditEvent:
        detail = {"size": len(body), **death}
        try:
            verified = await self.verify(body)
        except ExchangeError as exc:  # its own word is not evidence: digest and refusal only
            return AuditEvent(
                EventName.BROKER_DEAD_LETTER,
                digest=raw_digest,
                detail={**detail, "verified": False, "code": exc.code},
            )
        return audit_event(
            EventName.BROKER_DEAD_LETTER,
            verified.envelope,
            raw_digest,
            **detail,
            verified=True,
            sender=verified.envelope.sender,
        )


def first_death(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Why and when the broker first dead-lettered a message, from its ``x-death`` header:
    reason, queue, count and time (ISO), those that are there."""
    deaths = headers.get("x-death")
    if not isinstance(deaths, Sequence) or not deaths or not isinstance(deaths[0], Mapping):
        return {"reason": "unknown"}
    death = deaths[0]
    found: dict[str, Any] = {"reason": str(death.get("reason", "unknown"))}
    if isinstance(death.get("queue"), str):
        found["queue"] = death["queue"]
    if isinstance(death.get("count"), int):
        found["count"] = death["count"]
    if isinstance(death.get("time"), datetime):
        found["time"] = death["time"].isoformat()
    return found
