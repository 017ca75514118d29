"""Verifying deliveries off the event loop, in a small pool of worker threads.

Parsing, canonicalisation and signature checks are CPU work: on the loop, one hostile
envelope would stall every other delivery, receipt and handler of the node. In the pool,
the loop keeps serving while a worker verifies. A small delivery is verified on the loop:
the input limits bound its cost to little more than the hop to a thread and back, which every
delivery would otherwise pay.

Requests need no order among themselves. Answers and cancels do (a status must not
overtake its response, a cancel its request): those wait until every delivery that arrived
before them has been verified, so they reach the inbound's per-request locks in delivery
order, as they did when verification ran on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from exchange.envelope.model import Kind
from exchange.node.config import check_workers
from exchange.node.context import NodeContext
from exchange.signing import VerifiedEnvelope, unseal

Check = Callable[[bytes], VerifiedEnvelope]


class Verifier:
    """``unseal`` for a node's deliveries, in worker threads, answers kept in arrival order."""

    def __init__(self, context: NodeContext, workers: int, inline_up_to: int = 0) -> None:
        self.ctx = context
        self._workers = check_workers(workers)
        self._inline_up_to = inline_up_to  # bytes; a delivery this small is verified on the loop
        self._pool: ThreadPoolExecutor | None = None  # started on first use, again after close
        # What runs in a worker; tests put a check here that waits on an event.
        self.check: Check = self._unseal
        self._next_ticket = 0
        self._verifying: set[int] = set()  # tickets of deliveries still being verified
        self._passed = asyncio.Condition()

    async def verify(self, raw: bytes) -> VerifiedEnvelope:
        """Verify ``raw`` (in a worker unless it is small); an answer or cancel returns only
        after its elders.

        Raises:
            ExchangeError: what ``unseal`` raised (always one: unseal is total).
        """
        ticket = self._next_ticket
        self._next_ticket += 1
        self._verifying.add(ticket)
        try:
            if len(raw) <= self._inline_up_to:
                verified = self.check(raw)
            else:
                verified = await asyncio.get_running_loop().run_in_executor(
                    self._executor(), self.check, raw
                )
        finally:
            async with self._passed:
                self._verifying.discard(ticket)
                self._passed.notify_all()
        if verified.envelope.kind is not Kind.REQUEST:
            async with self._passed:
                await self._passed.wait_for(lambda: self._elders_done(ticket))
        return verified

    def _elders_done(self, ticket: int) -> bool:
        return not self._verifying or min(self._verifying) > ticket

    def close(self) -> None:
        """Stop the workers (a verification under way finishes; a restart starts new ones)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self._workers, thread_name_prefix=f"{self.ctx.party}-verify"
            )
        return self._pool

    def _unseal(self, raw: bytes) -> VerifiedEnvelope:
        return unseal(
            raw, self.ctx.trust, clock=self.ctx.clock, max_size=self.ctx.config.max_envelope_bytes
        )
