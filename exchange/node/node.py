"""A party's node: the public API departments use (SDK), and the loops that keep it going."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from exchange.attachments import (
    LOCATION,
    AttachmentFile,
    AttachmentStore,
    Gate,
    Outgoing,
    Receiver,
    Stored,
    Uploader,
)
from exchange.audit.config import AuditSettings
from exchange.catalog import AttachmentPolicy, Catalog
from exchange.envelope.model import Attachment, Envelope, Fault, Kind, ServiceRef
from exchange.exceptions import (
    AccessDenied,
    AttachmentMismatch,
    ContentPruned,
    DuplicateMessage,
    ExchangeError,
    StateConflict,
    UnknownMessage,
)
from exchange.ledger.event import AuditRecord, EventName
from exchange.node.admin import AdminCommands
from exchange.node.config import NodeConfig
from exchange.node.context import NodeContext, record_event
from exchange.node.crl_numbers import StoreCrlNumbers
from exchange.node.dead_letters import DeadLetterCensus
from exchange.node.handlers import Handler, Reply
from exchange.node.inbound import Inbound
from exchange.node.notices import Notice
from exchange.node.outbound import Outbound
from exchange.node.overdue import OverdueWatch
from exchange.node.parking import Parked, waiting_on, write_parked
from exchange.node.quarantine import quarantine
from exchange.node.relay import Relay
from exchange.node.retention import Pruner
from exchange.node.shipper import Shipper
from exchange.node.store.base import (
    OPEN_INBOX,
    PRUNED,
    InboxRecord,
    InboxState,
    OutboxRecord,
    OutboxState,
    Transaction,
)
from exchange.node.worker import Worker
from exchange.signing import WireFormat, sniff_format
from exchange.signing.stored import decode_stored
from exchange.transport.users import broker_user, url_user

Listener = Callable[[Notice], Awaitable[None] | None]
DEFAULT_AUDIT = AuditSettings.model_construct()  # the defaults; the environment is not read


class Companion(Protocol):
    """What runs beside a node (metrics, health probes): started after it, stopped before it."""

    async def start(self) -> None:
        """Start; the node is started and its store open."""
        ...

    async def stop(self) -> None:
        """Stop; the node stops right after."""
        ...


class Node:
    """One party on the bus: sends requests, receives and answers them, never loses one."""

    def __init__(self, context: NodeContext, audit: AuditSettings = DEFAULT_AUDIT) -> None:
        self.ctx = context
        self.audit = audit  # how the shipper checkpoints and ships this party's audit log
        self.handlers: dict[str, Handler] = {}
        self._listeners: list[Listener] = []
        self._waiters: dict[str, list[asyncio.Future[Notice]]] = {}
        self.outbound = Outbound(context, self._undelivered)
        own_user = broker_user(context.names, context.party)
        per_party_users = url_user(context.bus.url) == own_user
        self.uploader = Uploader(
            context.attachments,
            context.bus,
            context.names,
            user_id=own_user if per_party_users else None,
            chunk_size=context.config.attachment_chunk,
            window=context.config.attachment_window,
            log=context.log,
        )
        self.worker = Worker(
            context,
            self.handlers,
            self._respond_record,
            self._refuse_record,
            self._settled,
            self._tell_overdue,
        )
        self.receiver = Receiver(
            context.attachments,
            quarantine=self._quarantine,
            completed=self._attachment_arrived,
            mismatched=self._attachment_mismatched,
            sender_user=lambda party: broker_user(context.names, party),
            require_user=per_party_users,
            grace=context.config.attachment_grace,
            log=context.log,
        )
        self.gate = Gate(context.attachments, self.receiver, context.clock, self._attachment_wait)
        self.inbound = Inbound(
            context, self.outbound, self._notify, self._received_request_now, self.gate
        )
        self.relay = Relay(context, self.outbound, self._request_republished)
        self.admin = AdminCommands(context, self.inbound.verifier.verify)
        self.dead_letters = DeadLetterCensus(
            context,
            self.inbound.verifier.verify,
            context.config.dead_letter_census,
            self.admin.dead_letters_lock,
        )
        self.overdue = OverdueWatch(
            context, self.worker.calendar, self.handlers.keys(), self._tell_late
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._steps: list[asyncio.Event] = []  # followers to wake
        self._crl_numbers: StoreCrlNumbers | None = None
        self._companions: list[Companion] = []

    @property
    def party(self) -> str:
        """The party this node speaks for."""
        return self.ctx.party

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, connect, declare the topology, consume the inbox, start the loops.

        Raises:
            StoreUnavailable (store-unavailable), BrokerUnavailable (broker-unavailable).
        """
        await self.ctx.store.open()
        # The highest CRL number seen survives restarts, so an old crl.pem put back is refused.
        self._crl_numbers = await StoreCrlNumbers.load(self.ctx.store)
        self.ctx.trust.use_numbers(self._crl_numbers)
        await self._crl_numbers.flush()
        parties = [party.id for party in self.ctx.catalog.parties]

        if self.ctx.config.declare_topology:
            self.ctx.bus.declare_on_connect(self.ctx.names, parties)
        self.ctx.bus.subscribe(self.ctx.names.inbox(self.party), self.inbound.on_delivery)
        self.ctx.bus.subscribe(
            self.ctx.names.attachments(self.party),
            self.receiver.on_delivery,
            prefetch=self.ctx.config.attachment_prefetch,
        )
        shipper = Shipper(
            self.ctx,
            self.audit,
            owner=self.worker.owner,
            lease=timedelta(seconds=self.ctx.config.claim_lease),
        )
        self.ctx.bus.subscribe(self.ctx.names.audit_acks(self.party), shipper.on_ack)
        self.ctx.bus.subscribe(self.ctx.names.admin(self.party), self.admin.on_delivery)
        try:
            await self.ctx.bus.start()
        except BaseException:
            await self.ctx.store.close()
            raise
        self._tasks = [
            asyncio.create_task(self.relay.run(), name=f"{self.party}-relay"),
            asyncio.create_task(self.worker.run(), name=f"{self.party}-worker"),
            asyncio.create_task(shipper.run(), name=f"{self.party}-audit-shipper"),
            asyncio.create_task(Pruner(self.ctx).run(), name=f"{self.party}-pruner"),
            asyncio.create_task(self.overdue.run(), name=f"{self.party}-overdue"),
            asyncio.create_task(self._expire_held(), name=f"{self.party}-attachments"),
            asyncio.create_task(self.dead_letters.run(), name=f"{self.party}-dead-letters"),
        ]
        try:
            for companion in self._companions:
                await companion.start()
        except BaseException:
            await self.stop()
            raise
        self.ctx.log().info("node.started")

    def attach(self, companion: Companion) -> None:
        """Run ``companion`` beside this node: started after it starts, stopped before it stops.

        The composition root (``build_node``'s ``companions``) attaches metrics and probes
        this way, so the node knows nothing of them.
        """
        self._companions.append(companion)

    async def stop(self) -> None:
        """Stop the loops, let running handlers finish, disconnect, close the store."""
        if not self._tasks:
            return
        for companion in reversed(self._companions):
            try:
                await companion.stop()
            except Exception as exc:  # the node's own shutdown must still run
                self.ctx.log().error("companion.stop_failed", error=repr(exc))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.worker.drain()
        await self.uploader.stop()
        self.inbound.verifier.close()
        await self.outbound.drain()
        await self.ctx.bus.stop()
        await self.receiver.close()
        if self._crl_numbers is not None:
            await self._crl_numbers.flush()
        await self.ctx.store.close()
        self._tasks = []
        self.ctx.log().info("node.stopped")

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- for senders ----------------------------------------------------------------------

    async def request(
        self,
        service: str,
        payload: dict[str, Any],
        *,
        case_id: str | None = None,
        recipient: str | None = None,
        version: str | None = None,
        wire_format: WireFormat | None = None,
        expires_in: timedelta | None = None,
        test: bool = False,
        message_id: str | None = None,
        attachments: Sequence[Outgoing | Path | str] = (),
    ) -> str:
        """Send a request to the service's provider; return its message_id once it is durable.

        ``message_id`` makes the call idempotent: a caller that derives the id from its own
        data (e.g. a file's hash) passes it, and if this party's outbox already holds a
        message with that id, the call returns it without building or sending anything.

        ``attachments`` are paths or ``Outgoing`` (a path or an async byte stream with its
        name and media type). Each is copied into this party's attachment store while
        hashing, listed in the signed envelope (name, media type, size, SHA-256) and then
        streamed to the provider in chunks in the background; the provider receipts the
        request only once all arrived intact (until then the request is resent, and its
        attachments with it).

        Raises:
            UnknownService, AccessDenied, InvalidContent: refused locally, nothing sent.
            AttachmentRefused (attachment-refused): an attachment's type, size or number is
                outside the service's catalog entry; nothing sent.
            Unroutable (unroutable): the broker has no inbox for the provider.
        """
        if message_id is not None and await self.ctx.store.get_outbox(message_id) is not None:
            return message_id  # sent before (a re-run after a crash): never a second request
        try:
            return await self._file(
                service,
                payload,
                case_id=case_id,
                recipient=recipient,
                version=version,
                wire_format=wire_format,
                expires_in=expires_in,
                test=test,
                message_id=message_id,
                attachments=attachments,
            )
        except DuplicateMessage as duplicate:
            # Another process filed it between the look above and the insert (the insert is
            # insert-or-fail in one statement, so exactly one of them stored and sent it).
            if message_id is None or duplicate.data.get("message_id") != message_id:
                raise
            return message_id

    async def refile(self, request_id: str, *, expires_in: timedelta | None = None) -> str:
        """File a finished request again as a new one: new message id, same case id.

        The same service (and version), provider, payload, format and case id; the way to
        try again after a final answer, which is never replaced (DESIGN.md: Final is final).
        The new request's ``created`` audit record names the one it refiles.

        Raises:
            UnknownMessage (unknown-message): no such request in this party's outbox.
            StateConflict (state-conflict): it is still open; wait for its final answer or
                cancel it first.
            ContentPruned (content-pruned): its content was pruned; send it anew.
        """
        original = await self._sent_request(request_id)
        if original.state not in (OutboxState.ANSWERED, OutboxState.UNDELIVERED):
            raise StateConflict(
                f"request {request_id} is still open ({original.state.value}): wait for its "
                "final answer, or cancel it, before filing it again"
            )
        if original.wire == PRUNED:
            raise ContentPruned(
                f"request {request_id} has no content left to file again (pruned): send it anew"
            )
        envelope = decode_stored(original.wire)
        return await self._file(
            envelope.service.code,
            envelope.payload or {},
            case_id=original.case_id,
            recipient=original.recipient,
            version=envelope.service.version,
            wire_format=sniff_format(original.wire),
            expires_in=expires_in,
            test=envelope.test,
            refiles=request_id,
        )

    async def _file(
        self,
        service: str,
        payload: dict[str, Any],
        *,
        case_id: str | None,
        recipient: str | None,
        version: str | None,
        wire_format: WireFormat | None,
        expires_in: timedelta | None,
        test: bool,
        message_id: str | None = None,
        attachments: Sequence[Outgoing | Path | str] = (),
        **detail: Any,
    ) -> str:
        entry = self.ctx.catalog.service(service, version)
        if recipient is not None and recipient != entry.provider:
            raise AccessDenied(f"{service} is provided by {entry.provider}, not {recipient}")
        listed = await self._store_attachments(entry.code, entry.attachments, attachments)
        envelope = self.outbound.envelope(
            Kind.REQUEST,
            service=ServiceRef(code=entry.code, version=entry.version),
            recipient=entry.provider,
            expires_at=self.ctx.clock.now() + (expires_in or self.ctx.config.request_ttl),
            case_id=case_id,
            payload=payload,
            test=test,
            message_id=message_id,
            attachments=listed,
        )
        envelope = self.ctx.catalog.typed(envelope)  # typed, keys in the XSD's order
        wire_format = wire_format or self.ctx.config.wire_format
        self.ctx.catalog.check_request(envelope)
        self.ctx.catalog.check_payload(envelope, xml=wire_format is WireFormat.XML)
        self.ctx.catalog.check_attachments(envelope)
        for attachment in listed:  # before the request exists: retention never races it
            self.ctx.attachments.add_ref(attachment.sha256, envelope.message_id)
        await self.outbound.send(envelope, wire_format, EventName.CREATED, **detail)
        self.ctx.log(envelope).info("request.sent", recipient=entry.provider)
        if listed:
            self.uploader.start(envelope.message_id, entry.provider, listed)
        return envelope.message_id

    async def _store_attachments(
        self, service: str, policy: AttachmentPolicy, items: Sequence[Outgoing | Path | str]
    ) -> tuple[Attachment, ...]:
        """Check what the catalog allows, copy each into the store; their envelope entries.

        Refused before anything is uploaded: count and types at once, size while copying.
        """
        outgoing = [Outgoing.of(item) for item in items]
        labels = [item.label() for item in outgoing]
        policy.check(service, ((name, media, None) for name, media in labels))
        listed = []
        for item, (name, media_type) in zip(outgoing, labels, strict=True):
            if isinstance(item.source, Path):  # a clear refusal before a long copy
                policy.check(service, [(name, media_type, item.source.stat().st_size)])
            stored = await self.ctx.attachments.put(item.source, max_size=policy.max_size)
            listed.append(
                Attachment(
                    name=name,
                    media_type=media_type,
                    size=stored.size,
                    sha256=stored.sha256,
                    location=LOCATION + stored.sha256,
                )
            )
        return tuple(listed)

    async def cancel(self, request_id: str) -> None:
        """Ask the provider to stop working on a request this party sent.

        The provider confirms with a signed fault ``cancelled``: the request's final answer,
        noticed like any fault. If it answered first, that answer is final and the cancel is
        only noted there; either way exactly one final answer comes.

        Raises:
            UnknownMessage (unknown-message): no such request in this party's outbox.
        """
        request = await self._sent_request(request_id)
        if request.wire == PRUNED:  # only finished requests are pruned
            raise StateConflict(f"request {request_id} is already {request.state.value}")
        envelope = decode_stored(request.wire)
        cancel = self.outbound.envelope(
            Kind.CANCEL,
            service=envelope.service,
            recipient=request.recipient,
            expires_at=self.ctx.clock.now() + self.ctx.config.request_ttl,
            answering=(request.message_id, request.digest),
            case_id=request.case_id,
        )
        await self.outbound.send(cancel, sniff_format(request.wire), EventName.CANCEL_SENT)

    def on_notice(self, listener: Listener) -> None:
        """Call ``listener`` for every receipt, status, response, fault and undelivered."""
        self._listeners.append(listener)

    async def wait_answer(self, request_id: str, timeout: float | None = None) -> Notice:
        """Wait for a request's final notice: response, fault or undelivered."""
        future: asyncio.Future[Notice] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(request_id, []).append(future)
        try:
            async with asyncio.timeout(timeout):
                # The store is looked at too: another process of this party may have
                # consumed the answer.
                while (final := await self.final_notice(request_id)) is None:
                    with contextlib.suppress(TimeoutError):
                        return await asyncio.wait_for(asyncio.shield(future), 1.0)
                return final
        finally:
            waiters = self._waiters.get(request_id, [])
            if future in waiters:
                waiters.remove(future)

    # --- for providers --------------------------------------------------------------------

    def handler(self, service: str) -> Callable[[Handler], Handler]:
        """Register the handler of a service this party provides (decorator)."""
        entry = self.ctx.catalog.service(service)
        if entry.provider != self.party:
            raise AccessDenied(f"{self.party} does not provide {service}")

        def register(function: Handler) -> Handler:
            self.handlers[entry.code] = function
            self.worker.wake()
            return function

        return register

    async def respond(
        self,
        request_id: str,
        payload: dict[str, Any],
        *,
        attachments: Sequence[Outgoing | Path | str] = (),
    ) -> str:
        """Answer a received request (from any process of this party, days later).

        ``attachments`` (paths or ``Outgoing``) travel beside the response as a request's do.

        Raises:
            UnknownMessage (unknown-message): no such request received.
            StateConflict (state-conflict): already answered, rejected or cancelled.
            InvalidContent (invalid-content): the payload breaks the response schema.
            AttachmentRefused (attachment-refused): outside the service's catalog entry.
        """
        record = await self._received_request(request_id)
        return await self._respond_record(record, Reply(payload, attachments))

    def attachment_files(self, envelope: Envelope) -> tuple[AttachmentFile, ...]:
        """Readable handles on an envelope's attachments in this party's store (a response's,
        once noticed; ``open()`` says attachment-missing if one never arrived)."""
        return tuple(AttachmentFile(a, self.ctx.attachments) for a in envelope.attachments)

    async def reject(self, request_id: str, code: str, text: str) -> str:
        """Refuse a received request with a signed fault."""
        record = await self._received_request(request_id)
        return await self._refuse_record(record, code, text, InboxState.REJECTED)

    async def status(
        self, request_id: str, state: str, note: str | None = None, *, once: str | None = None
    ) -> str:
        """Tell the sender how a received request is getting on (it stays open).

        ``once`` is a key (of the store's meta table) committed with the status: if it is
        set already, by this process or another, nothing is sent. That makes "tell them this
        once" hold under concurrency.

        Raises:
            StateConflict (state-conflict): the request is finished, or ``once`` is set.
        """
        record = await self._received_request(request_id)
        if record.state not in OPEN_INBOX:
            raise StateConflict(f"request {request_id} is already {record.state.value}")
        payload = {"state": state, **({"note": note} if note else {})}

        def note_once(tx: Transaction) -> None:
            if once is not None:
                tx.put_meta(once, "sent", only_new=True)

        return await self._answer(
            record, Kind.STATUS, EventName.STATUS_SENT, payload=payload, also=note_once
        )

    # --- for connectors: what they read, through the node ----------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog this node checks requests against."""
        return self.ctx.catalog

    @property
    def attachments(self) -> AttachmentStore:
        """This party's attachment store (connectors stage uploads in its ``tmp/``)."""
        return self.ctx.attachments

    @property
    def config(self) -> NodeConfig:
        """This node's tunables (limits, time-outs)."""
        return self.ctx.config

    def log(self, envelope: Envelope | None = None, **extra: Any) -> Any:
        """A structlog logger with the party (and the envelope's ids) bound."""
        return self.ctx.log(envelope, **extra)

    async def sent_request(self, request_id: str) -> OutboxRecord | None:
        """A request this party sent, as stored; None if it sent no such request."""
        record = await self.ctx.store.get_outbox(request_id)
        return record if record is not None and record.kind == Kind.REQUEST.value else None

    async def received(self, message_id: str) -> InboxRecord | None:
        """A message this party received (a request or an answer), as stored."""
        return await self.ctx.store.get_inbox(message_id)

    async def answers(self, request_id: str) -> Sequence[InboxRecord]:
        """The answers received so far to a request this party sent, in arrival order."""
        return await self.ctx.store.inbox_for(request_id)

    async def answers_sent(self, request_id: str) -> Sequence[OutboxRecord]:
        """The answers this party sent so far to a request it received."""
        return await self.ctx.store.outbox_answering(request_id)

    async def waiting_on(self, request_id: str) -> str | None:
        """What a received request's handler waits on now (a request id, ``broker``), or None."""
        return await waiting_on(self.ctx.store, request_id)

    async def get_meta(self, key: str) -> str | None:
        """A connector's durable value (keys start with the connector's name)."""
        return await self.ctx.store.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        """Keep a connector's durable value in this party's store."""
        await self.ctx.store.set_meta(key, value)

    async def events(self, after: int = 0, limit: int = 500) -> Sequence[AuditRecord]:
        """This party's audited steps with seq above ``after``, committed, in order.

        Each is an ``AuditRecord`` whose ``event.event`` is an ``EventName``: the typed
        stream connectors (and metrics) follow from a durable cursor of their own, so a
        restart resumes where they left off.
        """
        return await self.ctx.store.audit(after, limit)

    async def last_event(self) -> int:
        """The seq of this party's latest audited step (0 before the first)."""
        head = await self.ctx.store.audit_head()
        return head[0] if head is not None else 0

    async def follow(self, after: int = 0, poll: float = 0.5) -> AsyncIterator[AuditRecord]:
        """Every audited step after seq ``after`` as it is committed, forever (async iterate).

        Woken by every notice and received request, else it looks every ``poll`` seconds.
        """
        wake = asyncio.Event()
        self._steps.append(wake)
        try:
            while True:
                wake.clear()
                records = await self.events(after)
                for record in records:
                    yield record
                    after = record.seq
                if not records:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), poll)
        finally:
            self._steps.remove(wake)

    # --- internals ------------------------------------------------------------------------

    async def _respond_record(
        self,
        record: InboxRecord,
        answer: dict[str, Any] | Reply,
        request: Envelope | None = None,
    ) -> str:
        reply = answer if isinstance(answer, Reply) else Reply(answer)
        listed: tuple[Attachment, ...] = ()
        if reply.attachments:
            entry = self.ctx.catalog.service(record.service)
            listed = await self._store_attachments(entry.code, entry.attachments, reply.attachments)
        sent = await self._answer(
            record,
            Kind.RESPONSE,
            EventName.RESPONDED,
            payload=reply.payload,
            close=InboxState.ANSWERED,
            request=request,
            attachments=listed,
        )
        if listed:
            self.uploader.start(sent, record.sender, listed)
        return sent

    async def _refuse_record(
        self,
        record: InboxRecord,
        code: str,
        text: str,
        state: InboxState,
        request: Envelope | None = None,
    ) -> str:
        event = EventName.DEAD_LETTERED if state is InboxState.DEAD else EventName.FAULT_SENT
        return await self._answer(
            record,
            Kind.FAULT,
            event,
            fault=Fault(code=code, text=text),
            close=state,
            request=request,
        )

    async def _settled(self, request_id: str) -> bool:
        return await self.final_notice(request_id) is not None

    async def _tell_overdue(self, record: InboxRecord, parked: Parked, due_at: datetime) -> str:
        """Status ``overdue`` to the requester of a parked request, once (noted with it)."""

        def note(tx: Transaction) -> None:
            write_parked(tx, record.message_id, replace(parked, overdue_told=True))

        return await self._tell_late(record, due_at, parked.on, note)

    async def _tell_late(
        self,
        record: InboxRecord,
        due_at: datetime,
        waiting_on: str,
        note: Callable[[Transaction], None],
    ) -> str:
        """Status ``overdue`` to the requester of a request still open as ``record`` shows it;
        ``note`` marks it told, in the same transaction."""

        def told(tx: Transaction) -> None:
            note(tx)
            if record.claim_owner is not None:  # told by a worker: only under its claim
                tx.hold_claim(record.message_id, record.claim_owner, release=False)
            # Only while nothing moved it on (answered, cancelled): else StateConflict, unsent.
            tx.set_inbox_state(record.message_id, record.state, only_from=(record.state,))
            tx.audit(
                record_event(
                    EventName.OVERDUE, record, due_at=due_at.isoformat(), waiting_on=waiting_on
                )
            )

        text = f"past its regulated deadline ({due_at.isoformat()}); still waiting, not failed"
        payload = {"state": "overdue", "note": text}
        return await self._answer(
            record, Kind.STATUS, EventName.STATUS_SENT, payload=payload, also=told
        )

    async def _answer(
        self,
        record: InboxRecord,
        kind: Kind,
        event: EventName,
        *,
        payload: dict[str, Any] | None = None,
        fault: Fault | None = None,
        close: InboxState | None = None,
        request: Envelope | None = None,
        also: Callable[[Transaction], None] | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> str:
        """Send an answer to a received request; ``request`` is its envelope if at hand."""
        if record.wire == PRUNED:  # only finished requests are pruned
            raise StateConflict(f"request {record.message_id} is already {record.state.value}")
        request = request or decode_stored(record.wire)
        wire_format = sniff_format(record.wire)
        answer = self.outbound.envelope(
            kind,
            service=request.service,
            recipient=record.sender,
            expires_at=self.ctx.clock.now() + self.ctx.config.request_ttl,
            answering=(record.message_id, record.digest),
            case_id=record.case_id,
            payload=payload,
            fault=fault,
            attachments=attachments,
        )
        answer = self.ctx.catalog.typed(answer)  # typed, keys in the XSD's order
        self.ctx.catalog.check_payload(answer, xml=wire_format is WireFormat.XML)

        def close_request(tx: Transaction) -> None:
            if also is not None:
                also(tx)
            if close is not None and record.claim_owner is not None:
                # Answered by a worker's handler: only while its claim holds (LeaseLost).
                tx.hold_claim(record.message_id, record.claim_owner)
            if close is not None:
                tx.set_inbox_state(
                    record.message_id, close, attempts=record.attempts, only_from=OPEN_INBOX
                )
                tx.audit(record_event(EventName(close.value), record))

        sent = await self.outbound.send(answer, wire_format, event, also=close_request)
        self.ctx.log(request).info(f"request.{event}", answer=sent.message_id)
        return sent.message_id

    async def _received_request(self, request_id: str) -> InboxRecord:
        record = await self.ctx.store.get_inbox(request_id)
        if record is None or record.kind != Kind.REQUEST.value:
            raise UnknownMessage(f"{self.party} has received no request {request_id}")
        return record

    async def _sent_request(self, request_id: str) -> OutboxRecord:
        record = await self.ctx.store.get_outbox(request_id)
        if record is None or record.kind != Kind.REQUEST.value:
            raise UnknownMessage(f"{self.party} has sent no request {request_id}")
        return record

    def stored_envelope(self, wire: bytes) -> Envelope | None:
        """The typed envelope of a stored wire (as handlers see it), None if pruned."""
        return None if wire == PRUNED else self.ctx.catalog.typed(decode_stored(wire))

    async def final_notice(self, request_id: str) -> Notice | None:
        """The final answer to a request this party sent, as stored (None while open)."""
        for record in await self.ctx.store.inbox_for(request_id):
            if record.state is InboxState.LATE:
                continue  # after the final answer: on record, never an answer of its own
            if record.kind in (Kind.RESPONSE.value, Kind.FAULT.value):
                # None when a metadata-only party kept no content: the kind alone
                return Notice(record.kind, request_id, self.stored_envelope(record.wire))
        sent = await self.ctx.store.get_outbox(request_id)
        if sent is not None and sent.state is OutboxState.UNDELIVERED:
            return Notice("undelivered", request_id)
        return None

    def _received_request_now(self, envelope: Envelope) -> None:
        self.worker.received(envelope)
        self._wake_followers()

    def _wake_followers(self) -> None:
        for step in self._steps:
            step.set()

    async def _notify(self, notice: Notice) -> None:
        self._wake_followers()
        if notice.kind != "undelivered" and self.uploader.uploading(notice.request_id):
            self.uploader.cancel(notice.request_id)  # receipted: the provider holds them all
        for listener in self._listeners:
            try:
                result = listener(notice)
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:  # a listener's bug must not stop the inbox
                self.ctx.log().error("listener.failed", error=repr(exc))
        if notice.final:
            await self.worker.settled(notice.request_id)  # resume handlers waiting on it
            for future in self._waiters.pop(notice.request_id, []):
                if not future.done():
                    future.set_result(notice)

    # --- attachments -----------------------------------------------------------------------

    def _attachment_wait(self, envelope: Envelope) -> timedelta:
        """How long a request may wait for its attachments (see NodeConfig.attachment_wait)."""
        if self.ctx.config.attachment_wait is not None:
            return self.ctx.config.attachment_wait
        entry = self.ctx.catalog.service(envelope.service.code, envelope.service.version)
        return timedelta(days=entry.deadline.days) / 10

    async def _quarantine(self, raw: bytes, error: ExchangeError) -> None:
        await quarantine(self.ctx, raw, error)

    async def _attachment_arrived(self, stored: Stored) -> None:
        await self.gate.completed(stored)

    async def _attachment_mismatched(self, sha256: str, error: AttachmentMismatch) -> None:
        await self.gate.mismatched(sha256, error)

    def _request_republished(self, record: OutboxRecord) -> None:
        """The relay sent a request again (no receipt yet): its attachments go again too."""
        if record.wire == PRUNED:
            return
        envelope = decode_stored(record.wire)
        if envelope.attachments:
            self.uploader.start(record.message_id, record.recipient, envelope.attachments)

    async def _expire_held(self) -> None:
        while True:
            try:
                await self.gate.expire()
            except ExchangeError as exc:
                self.ctx.log().error("attachments.expire_failed", error=exc.message)
            await asyncio.sleep(max(self.ctx.config.poll_interval, 0.2))

    async def _undelivered(self, record: OutboxRecord) -> None:
        await self._notify(Notice("undelivered", record.message_id))
