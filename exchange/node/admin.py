"""A party's node carrying out signed admin commands from the console, under its own rules.

Commands arrive on the party's admin queue (``BusNames.admin``). Each is verified first
(``exchange.admin.command.open_command``: signature, trust store and CRL at the node's time,
signer is the catalog's console, addressed to this party, inside its validity window);
anything that fails is quarantined with its code and audited (``quarantined``, ``what`` =
``admin-command``), never carried out. A verified command is carried out once (its id is
kept in the store with the outcome, so a redelivery or a second process does nothing), and
the command and its outcome are audited in one transaction: ``admin-command`` (who asked
what), then ``replayed`` or ``replay-refused`` with the refusal's code.

Replay, precisely. A request may be given to its handler again only if it never got a
final answer (DESIGN.md: Final is final):

- A broker dead letter: a delivery of a request to this party that the broker
  dead-lettered to the party's dead-letter queue (its delivery limit ran out before the
  request was stored, e.g. while the store was down). It was never stored, receipted or
  answered. Replay verifies each dead letter as the inbox would and moves the one that is
  a request with this message id back to the inbox: the node then takes it like any
  delivery (receipt, handler, answer). Outcome ``replayed``.
- A request in the party's store: every state of it is refused. Dead (``dead``, after the
  retry limit) means ``processing-failed`` was sent, a final answer, as are answered,
  rejected, cancelled and expired (``already-final``); an open request (received, waiting)
  is still the handler's (``state-conflict``). The store has no state "dead without a final
  answer": a request is closed as dead in the transaction that sends ``processing-failed``.
  To try a final request again, its sender files a new one (``Node.refile``).
- Neither: ``unknown-message``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from exchange.admin.command import VerifiedCommand, open_command
from exchange.envelope.model import Kind
from exchange.exceptions import (
    AlreadyFinal,
    ExchangeError,
    StateConflict,
    UnknownMessage,
)
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.context import NodeContext, audit_event
from exchange.node.quarantine import quarantine
from exchange.node.store.base import OPEN_INBOX
from exchange.signing import VerifiedEnvelope, digest
from exchange.transport.admin import take_dead_letter

if TYPE_CHECKING:
    from exchange.transport.delivery import Delivery

Verify = Callable[[bytes], Awaitable[VerifiedEnvelope]]
COMMAND_KEY = "admin.command."
"""Store meta key prefix: a carried-out command's id, with its outcome."""

_LOOK_AGAIN = (0.5, 1.0, None)  # pauses before looking for a dead letter again


class AdminCommands:
    """Consumes the party's admin queue: verify, carry out once, audit."""

    def __init__(self, context: NodeContext, verify: Verify) -> None:
        """``verify`` is the inbox's envelope verification (dead letters pass the same)."""
        self.ctx = context
        self.verify = verify
        # Held while this process looks through its dead-letter queue (a replay, a census):
        # letters one look holds unacked are invisible to the other.
        self.dead_letters_lock = asyncio.Lock()

    async def on_delivery(self, message: Delivery) -> None:
        """Verify a command and carry it out, then ack; quarantine what does not verify."""
        ctx = self.ctx
        try:
            verified = open_command(
                message.body, ctx.trust, ctx.catalog.data, ctx.party, ctx.clock.now()
            )
        except ExchangeError as exc:
            try:
                await quarantine(ctx, message.body, exc, what="admin-command")
            except ExchangeError as failed:  # not safe yet: let the broker keep it
                ctx.log().error("admin.quarantine_failed", code=exc.code, error=failed.message)
                await message.nack(requeue=True)
                return
            await message.reject(requeue=False)
            return
        try:
            await self.carry_out(verified)
        except ExchangeError as exc:  # store or broker down: the command comes again
            ctx.log().error("admin.failed", code=exc.code, error=exc.message)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def carry_out(self, verified: VerifiedCommand) -> EventName:
        """Carry out a verified command once; audit it with its outcome; return the outcome.

        Raises:
            StoreError subclasses, TransportError subclasses: nothing audited; try again.
        """
        command = verified.command
        key = COMMAND_KEY + command.command_id
        done = await self.ctx.store.get_meta(key)
        if done is not None:
            self.ctx.log().info("admin.duplicate", command_id=command.command_id, outcome=done)
            return EventName(done)
        asked = AuditEvent(
            EventName.ADMIN_COMMAND,
            message_id=command.message_id,
            detail={
                "command_id": command.command_id,
                "action": command.action.value,
                "actor": command.actor,
                "console": verified.signer.party,
                "serial": f"{verified.signer.serial:x}",
                "command_digest": verified.digest,
            },
        )
        outcome = await self._outcome(verified)
        try:
            async with self.ctx.store.transaction() as tx:
                tx.put_meta(key, outcome.event.value, only_new=True)
                tx.audit(asked)
                tx.audit(outcome)
        except StateConflict:
            # Another process of this party carried it out first (its outcome stands).
            return EventName(await self.ctx.store.get_meta(key) or outcome.event.value)
        self.ctx.log().info(
            f"admin.{outcome.event.value}",
            command_id=command.command_id,
            message_id=command.message_id,
            actor=command.actor,
        )
        return outcome.event

    async def _outcome(self, verified: VerifiedCommand) -> AuditEvent:
        command = verified.command  # Action.REPLAY: the only action a command can carry
        try:
            return await self.replay(command.message_id, command.command_id)
        except (StateConflict, UnknownMessage) as refusal:  # AlreadyFinal is a StateConflict
            return AuditEvent(
                EventName.REPLAY_REFUSED,
                message_id=command.message_id,
                detail={
                    "command_id": command.command_id,
                    "code": refusal.code,
                    "reason": refusal.message[:1000],
                },
            )

    async def replay(self, message_id: str, command_id: str) -> AuditEvent:
        """Move the broker dead letter of request ``message_id`` back to the inbox.

        Raises:
            AlreadyFinal (already-final): the store has it with its final answer.
            StateConflict (state-conflict): the store has it open; its handler runs it.
            UnknownMessage (unknown-message): neither the store nor the dead letters have it.
            BrokerUnavailable, PublishNotConfirmed: the broker failed; nothing moved.
        """
        stored = await self.ctx.store.get_inbox(message_id)
        if stored is not None and stored.kind == Kind.REQUEST.value:
            if stored.state in OPEN_INBOX:
                raise StateConflict(
                    f"request {message_id} is open ({stored.state.value}): its handler runs "
                    "it; there is nothing to replay"
                )
            raise AlreadyFinal(
                f"request {message_id} from {stored.sender} already has its final answer "
                f"({stored.state.value}); it is never handed to the handler again. Its "
                f"sender files it again as a new request: `exchange send --from "
                f"{stored.sender} --refile {message_id}`"
            )
        found: list[VerifiedEnvelope] = []

        async def pick(body: bytes) -> bool:
            try:
                verified = await self.verify(body)
            except ExchangeError:
                return False  # not ours to move: it stays among the dead letters
            envelope = verified.envelope
            if (
                envelope.message_id != message_id
                or envelope.kind is not Kind.REQUEST
                or envelope.recipient != self.ctx.party
            ):
                return False
            found.append(verified)
            return True

        body = None
        for pause in _LOOK_AGAIN:  # another process's census may hold the letter a moment
            async with self.dead_letters_lock:
                body = await take_dead_letter(
                    self.ctx.bus.url, self.ctx.names, self.ctx.party, pick
                )
            if body is not None or pause is None:
                break
            await asyncio.sleep(pause)
        if body is None or not found:
            raise UnknownMessage(
                f"{self.ctx.party} has no request {message_id}: not in its store, not among "
                "its broker dead letters"
            )
        return audit_event(
            EventName.REPLAYED,
            found[0].envelope,
            digest(body),
            command_id=command_id,
            source="broker-dead-letters",
        )
