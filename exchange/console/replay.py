"""The console's seam for admin commands: replaying a dead letter on its party's node.

The console only decides who may ask (admins, after a confirmation, with a CSRF token); a
``Replayer`` turns the request into a signed admin command that the party's own node carries
out under its rules (refused where a final answer was already sent) and audits.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from aiohttp import web


@runtime_checkable
class Replayer(Protocol):
    """Sends the signed replay command for one dead request of one party."""

    async def replay(self, party: str, message_id: str, actor: str) -> str:
        """Ask ``party``'s node to replay ``message_id`` on behalf of ``actor``.

        Returns a short human text of what was sent (e.g. the command's id).
        """


REPLAYER = web.AppKey("replayer", Replayer)
"""Where the console application keeps its replayer (absent: replay is unavailable)."""
