"""A department's casebook: what its system decided and asked, by request id.

A handler may run again for the same request (the node was killed midway, or an earlier run
failed and is retried). The casebook makes the run idempotent: a decision taken once is
given again, a question already put to another department is waited on again rather than
asked twice, a status already sent is not repeated. It lives in the party's own store (its
meta table), so every process of the party sees it and it survives restarts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from adapters._config import AdapterConfig
from exchange.exceptions import StateConflict
from exchange.node import IncomingRequest, Node, Waiting

_QUESTIONS = uuid.UUID("6f1d3c2a-5b7e-4c1a-9e0f-3a2b1c0d9e8f")  # namespace of question ids


class QueryFailed(Exception):
    """Another department answered a question with a fault, or never received it.

    The handler lets it propagate: the node retries the handler with back-off, which asks
    again, and after its retry limit answers the citizen's request with ``processing-failed``.
    """

    def __init__(self, service: str, outcome: str, detail: str) -> None:
        super().__init__(f"{service}: {outcome}: {detail}")
        self.service = service
        self.outcome = outcome
        self.detail = detail


class Casebook:
    """Idempotency for one department's handlers, kept in its node's store."""

    def __init__(self, node: Node, config: AdapterConfig) -> None:
        self.node = node
        self.config = config

    def _key(self, *parts: str) -> str:
        return ".".join(("adapter", self.node.party, *parts))

    async def _get(self, key: str) -> str | None:
        return await self.node.ctx.store.get_meta(key)

    async def _put(self, key: str, value: str) -> None:
        await self.node.ctx.store.set_meta(key, value)

    async def decide(
        self, request: IncomingRequest, decide: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """The decision on ``request``: the one recorded earlier, or ``decide()``'s, recorded.

        A ``Reject`` or any other exception from ``decide`` records nothing.
        """
        key = self._key("decision", request.message_id)
        earlier = await self._get(key)
        if not earlier:
            decision = await decide()
            try:  # insert-or-fail: of two runs deciding at once, the first recorded wins
                async with self.node.ctx.store.transaction() as tx:
                    tx.put_meta(key, json.dumps(decision, ensure_ascii=False), only_new=True)
                return decision
            except StateConflict:
                earlier = await self._get(key)
        recorded: dict[str, Any] = json.loads(earlier or "{}")
        return recorded

    async def ask(
        self, request: IncomingRequest, service: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Ask another department (once per request and service); return its response payload.

        The question's message id is derived from the request's id, the service and how
        many earlier questions failed, so a run of the handler after a crash finds the
        question already in the outbox and waits for its answer instead of asking twice.
        Waits up to ``config.query_timeout`` seconds, then parks the request: waiting for
        another department is not a failure and uses none of the handler's retry budget (the
        node runs the handler again when the answer comes). The question carries the
        citizen's case id, so a trace of the case shows the other department's part.

        Raises:
            Waiting: no answer yet; the run after the answer came finds it here.
            QueryFailed: the department answered with a fault, or the question was
                undelivered; a later run asks again, with a new question.
        """
        failures_key = self._key("failed-asks", request.message_id, service)
        failures = int(await self._get(failures_key) or 0)
        question = str(
            uuid.uuid5(_QUESTIONS, f"{self.node.party}/{request.message_id}/{service}/{failures}")
        )
        await self.node.request(
            service,
            payload,
            case_id=request.envelope.case_id,
            wire_format=self.config.wire_format,
            message_id=question,
        )
        try:
            notice = await self.node.wait_answer(question, timeout=self.config.query_timeout)
        except TimeoutError:
            raise Waiting(on=question) from None
        if notice.kind == "response" and notice.envelope is not None:
            return dict(notice.envelope.payload or {})
        await self._put(failures_key, str(failures + 1))
        fault = notice.envelope.fault if notice.envelope is not None else None
        detail = f"{fault.code}: {fault.text}" if fault is not None else "no receipt"
        raise QueryFailed(service, notice.kind, detail)

    async def tell(self, request: IncomingRequest, state: str, note: str) -> None:
        """Send the requester a status update about ``request``, once per ``state``.

        The note that it was sent commits with the status itself, insert-or-fail: of runs in
        several processes at once, exactly one sends it.
        """
        key = self._key("status", request.message_id, state)
        if await self._get(key):
            return
        try:
            await self.node.status(request.message_id, state, note, once=key)
        except StateConflict:
            if not await self._get(key):
                raise  # the request is finished, not told already
