"""The console's side of admin commands: sign one and put it on the party's admin queue."""

from __future__ import annotations

from datetime import timedelta

from exchange._clock import SYSTEM_CLOCK, Clock
from exchange._ids import new_message_id
from exchange.admin.command import (
    COMMAND_CONTENT_TYPE,
    MAX_LIFETIME,
    Action,
    AdminCommand,
    seal_command,
)
from exchange.pki.credentials import Credentials
from exchange.transport.base import Transport
from exchange.transport.names import BusNames

DEFAULT_TTL = timedelta(minutes=15)


class AdminClient:
    """Sends signed admin commands with the console's credentials over a started bus.

    Commands carry no reply: the party's node audits the command and its outcome (events
    ``admin-command`` then ``replayed`` or ``replay-refused``), which the audit log and the
    event stream show.
    """

    def __init__(
        self,
        bus: Transport,
        names: BusNames,
        credentials: Credentials,
        clock: Clock = SYSTEM_CLOCK,
        ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        if not timedelta(0) < ttl <= MAX_LIFETIME:
            raise ValueError(f"a command's ttl must be positive and at most {MAX_LIFETIME}")
        self.bus = bus
        self.names = names
        self.credentials = credentials
        self.clock = clock
        self.ttl = ttl

    async def replay(self, party: str, message_id: str, actor: str) -> str:
        """Ask ``party``'s node to replay request ``message_id``; return the command id.

        The node decides: only a request that never got a final answer is replayed
        (``exchange.node.admin``).

        Raises:
            ValueError: an empty ``party``, ``message_id`` or ``actor``.
            Unroutable (unroutable): the broker has no admin queue for ``party``.
            BrokerUnavailable (broker-unavailable), PublishNotConfirmed
                (publish-not-confirmed): nothing was sent; try again.
        """
        if not (party and message_id and actor):
            raise ValueError("party, message_id and actor must not be empty")
        now = self.clock.now()
        command = AdminCommand(
            command_id=new_message_id(),
            action=Action.REPLAY,
            party=party,
            message_id=message_id,
            actor=actor,
            issued_at=now,
            expires_at=now + self.ttl,
        )
        await self.bus.publish(
            self.names.bus,
            self.names.admin(party),
            seal_command(command, self.credentials),
            content_type=COMMAND_CONTENT_TYPE,
            message_type=f"admin-command:{command.action.value}",
        )
        return command.command_id
