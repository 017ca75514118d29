"""Durable callbacks of the HTTP bridge: the node's audit log, POSTed to the departmental system.

Nothing is kept only in memory. The node already records every step in its party's audit
log, in the same transaction as the step itself: ``receipt-received``, ``status-received``,
``response-received``, ``fault-received`` and ``undelivered`` for requests the party sent,
``handed-over`` and ``cancelled`` for requests it provides. A ``late-answer`` (a status,
response or fault after the request's final answer) is never called back: the system gets one final
answer per request. The dispatcher reads that log
from a cursor kept in the store's meta table (``http-bridge.callbacks``: the highest audit
seq whose callbacks are all delivered, plus the seqs above it already delivered), turns each
such event into a callback and POSTs it until the target answers 2xx, with back-off and
without limit. After a restart it resumes from the cursor, so a callback is never lost; one
delivered just before a crash may come once more, with the same ``callback_id``, which
receivers use to drop the repeat.

Callbacks to one URL go out in audit order (a receipt before its response); a target that
is down holds up only its own callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from exchange.envelope.content import answer_content
from exchange.envelope.model import Envelope
from exchange.ledger.event import AuditEvent, AuditRecord, EventName
from exchange.node import Node

STATE_KEY = "http-bridge.callbacks"
URL_KEY = "http-bridge.callback-url."  # + request id: the callback_url given with the request
_NOTICES = {
    EventName.RECEIPT_RECEIVED: "receipt",
    EventName.STATUS_RECEIVED: "status",
    EventName.RESPONSE_RECEIVED: "response",
    EventName.FAULT_RECEIVED: "fault",
}
_SCAN_BATCH = 500


@dataclass(frozen=True)
class CallbackConfig:
    """Where callbacks go and how hard the dispatcher tries.

    ``default_url`` receives notices about requests sent without a ``callback_url``;
    ``requests_url`` receives the requests this party provides (and their cancels); either
    left unset means those events are not called back.
    """

    default_url: str | None = None
    requests_url: str | None = None
    delays: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 300.0)  # then the last, forever
    timeout: float = 10.0  # per POST
    poll_interval: float = 0.5  # how often the audit log is read when nothing woke us


@dataclass(frozen=True, slots=True)
class Callback:
    """One POST to make: the audit seq it comes from, its target and its JSON body."""

    seq: int
    url: str
    body: dict[str, Any]


@dataclass
class _Progress:
    """The durable cursor: every callback at or below ``cursor`` is delivered, and ``done``."""

    cursor: int = 0
    done: set[int] = field(default_factory=set)

    @classmethod
    def parse(cls, raw: str) -> _Progress:
        data = json.loads(raw)
        return cls(int(data["cursor"]), {int(seq) for seq in data.get("done", [])})

    def dump(self) -> str:
        return json.dumps({"cursor": self.cursor, "done": sorted(self.done)})

    def settle(self, scanned: int, pending: set[int]) -> bool:
        """Move the cursor as far as delivered callbacks allow; True if it moved."""
        cursor = min(pending) - 1 if pending else scanned
        if cursor <= self.cursor:
            return False
        self.cursor = cursor
        self.done = {seq for seq in self.done if seq > cursor}
        return True


class Gate:
    """Requests being sent hold it shared until their callback_url is stored; a scan holds it alone.

    Without it, a receipt could be scanned before the callback_url of its request is stored,
    and go to the default URL instead.
    """

    def __init__(self) -> None:
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Hold the gate with others (sending a request)."""
        await self._open.wait()
        self._active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the gate alone (scanning); new shared holders wait meanwhile."""
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._open.set()


class Dispatcher:
    """Turns audit events of a node into callbacks and delivers each until it gets a 2xx."""

    def __init__(self, node: Node, config: CallbackConfig) -> None:
        self.node = node
        self.config = config
        self.gate = Gate()
        self._progress = _Progress()
        self._scanned = 0
        self._pending: set[int] = set()
        self._queues: dict[str, asyncio.Queue[Callback]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    @property
    def pending(self) -> int:
        """How many callbacks wait for a 2xx."""
        return len(self._pending)

    async def start(self) -> None:
        """Load the cursor (a first start begins at the end of the log) and start delivering."""
        raw = await self.node.get_meta(STATE_KEY)
        if raw is None:
            self._progress = _Progress(cursor=await self.node.last_event())
            await self.node.set_meta(STATE_KEY, self._progress.dump())
        else:
            self._progress = _Progress.parse(raw)
        self._scanned = self._progress.cursor
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout)
        )
        self.node.on_notice(lambda _notice: self.wake())
        self._tasks.append(asyncio.create_task(self._run(), name="http-bridge-callbacks"))

    async def stop(self) -> None:
        """Stop delivering; what was not delivered is delivered after the next start."""
        tasks = [*self._tasks, *self._senders]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queues.clear()
        self._pending.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        """Read the audit log now rather than at the next poll."""
        self._wake.set()

    async def remember(self, request_id: str, url: str) -> None:
        """Keep the callback_url given with a request, durably, for its notices."""
        await self.node.set_meta(URL_KEY + request_id, url)

    async def callback_url(self, request_id: str) -> str | None:
        """Where notices about a request this party sent go."""
        return await self.node.get_meta(URL_KEY + request_id) or self.config.default_url

    # --- reading the audit log ------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                found = await self.scan()
            except Exception as exc:  # store trouble: try again at the next poll
                self.node.log().error("callbacks.scan_failed", error=repr(exc))
                found = 0
            if found < _SCAN_BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)

    async def scan(self) -> int:
        """Queue the callbacks of audit records not read yet; return how many records were read."""
        async with self.gate.exclusive():
            records = await self.node.events(self._scanned, _SCAN_BATCH)
            for record in records:
                if record.seq not in self._progress.done:
                    callback = await self._callback_for(record)
                    if callback is not None:
                        self._pending.add(record.seq)
                        self._queue(callback.url).put_nowait(callback)
                self._scanned = record.seq
        if records and self._progress.settle(self._scanned, self._pending):
            await self.node.set_meta(STATE_KEY, self._progress.dump())
        return len(records)

    async def _callback_for(self, record: AuditRecord) -> Callback | None:
        event = record.event
        if event.event in _NOTICES and event.correlation_id and event.message_id:
            url = await self.callback_url(event.correlation_id)
            answer = await self.node.received(event.message_id)
            if url is None or answer is None:
                return None
            envelope = self.node.stored_envelope(answer.wire)
            if envelope is None:
                return Callback(record.seq, url, _pruned(event, _NOTICES[event.event]))
            body = _about(envelope, _NOTICES[event.event], event.correlation_id, event.message_id)
            return Callback(record.seq, url, body | answer_content(envelope))
        if event.event is EventName.UNDELIVERED and event.kind == "request" and event.message_id:
            url = await self.callback_url(event.message_id)
            if url is None:
                return None
            body = {
                "callback_id": f"{event.message_id}.undelivered",
                "kind": "undelivered",
                "request_id": event.message_id,
                "service": event.service,
                "case_id": event.case_id,
                "reason": str(event.detail.get("reason", "")),
            }
            return Callback(record.seq, url, body)
        url = self.config.requests_url
        if url is None or not event.message_id:
            return None
        if event.event is EventName.HANDED_OVER:
            request = await self.node.received(event.message_id)
            envelope = self.node.stored_envelope(request.wire) if request is not None else None
            if envelope is None:
                return None  # finished and pruned: nothing left to hand over
            body = _about(envelope, "request", envelope.message_id, envelope.message_id)
            body |= {"sender": envelope.sender, "version": envelope.service.version}
            body |= {"expires_at": envelope.expires_at.isoformat(), "payload": envelope.payload}
            return Callback(record.seq, url, body)
        if event.event is EventName.CANCELLED and event.correlation_id:
            body = {
                "callback_id": event.message_id,
                "kind": "cancel",
                "request_id": event.correlation_id,
                "service": event.service,
                "case_id": event.case_id,
            }
            return Callback(record.seq, url, body)
        return None

    # --- delivering -----------------------------------------------------------------------

    def _queue(self, url: str) -> asyncio.Queue[Callback]:
        queue = self._queues.get(url)
        if queue is None:
            queue = self._queues[url] = asyncio.Queue()
            task = asyncio.create_task(self._deliver_all(url, queue), name=f"callbacks to {url}")
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)
        return queue

    async def _deliver_all(self, url: str, queue: asyncio.Queue[Callback]) -> None:
        # One task per target URL while it has callbacks to take: in order, one at a time.
        while not queue.empty():
            callback = queue.get_nowait()
            await self._deliver(callback)
            self._pending.discard(callback.seq)
            self._progress.done.add(callback.seq)
            self._progress.settle(self._scanned, self._pending)
            await self._save()
        del self._queues[url]  # no await since the check: a scan cannot slip in between

    async def _save(self) -> None:
        while True:
            try:
                await self.node.set_meta(STATE_KEY, self._progress.dump())
                return
            except Exception as exc:  # the store is back soon; the callback is not resent
                self.node.log().error("callbacks.save_failed", error=repr(exc))
                await asyncio.sleep(self.config.delays[0])

    async def _deliver(self, callback: Callback) -> None:
        assert self._session is not None, "start() first"
        log = self.node.log(
            callback_id=callback.body["callback_id"], request_id=callback.body["request_id"]
        )
        headers = {"X-Exchange-Callback-Id": str(callback.body["callback_id"])}
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._session.post(
                    callback.url, json=callback.body, headers=headers
                ) as response:
                    if 200 <= response.status < 300:
                        log.info("callback.delivered", kind=callback.body["kind"], attempt=attempt)
                        return
                    error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = repr(exc)
            delay = self.config.delays[min(attempt, len(self.config.delays)) - 1]
            log.warning("callback.retry", error=error, attempt=attempt, retry_in=delay)
            await asyncio.sleep(delay)


def _about(envelope: Envelope, kind: str, request_id: str, callback_id: str) -> dict[str, Any]:
    return {
        "callback_id": callback_id,
        "kind": kind,
        "request_id": request_id,
        "message_id": envelope.message_id,
        "service": envelope.service.code,
        "case_id": envelope.case_id,
        "sent_at": envelope.created_at.isoformat(),
    }


def _pruned(event: AuditEvent, kind: str) -> dict[str, Any]:
    """A callback for an answer whose content the store no longer keeps."""
    return {
        "callback_id": event.message_id,
        "kind": kind,
        "request_id": event.correlation_id,
        "message_id": event.message_id,
        "service": event.service,
        "case_id": event.case_id,
        "content_pruned": True,
    }
