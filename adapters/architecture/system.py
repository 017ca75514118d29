"""The Department of Architecture and Urban Planning's simulated departmental system.

``register(node)`` installs its handlers: ``exchange node run architecture``
(the catalog names this adapter). An appearance application on a known plot makes
it ask Urban-Planning Permits for the zoning extract first: Single Center -> Architecture
-> Urban-Planning Permits and back.
"""

from __future__ import annotations

from typing import Any

from adapters._casebook import Casebook
from adapters.architecture import rules
from adapters.architecture.config import CONFIG
from exchange.node import IncomingRequest, Node


def register(node: Node) -> None:
    """Install the handlers of ``architectural-appearance`` and ``signage-project``."""
    casebook = Casebook(node, CONFIG)

    @node.handler("architectural-appearance")
    async def appearance(request: IncomingRequest) -> dict[str, Any]:
        """Ask Urban-Planning Permits for the plot's zoning, then approve or refuse."""

        async def decide() -> dict[str, Any]:
            application = request.payload
            extract: dict[str, Any] | None = None
            number = application["object"].get("cadastral_number")
            if number:
                await casebook.tell(
                    request,
                    "waiting-for-data",
                    "asked the Management of Urban-Planning Permits for the zoning extract",
                )
                extract = await casebook.ask(
                    request,
                    "urban-plan-extract",
                    {
                        "cadastral_number": number,
                        "purpose": f"Architectural appearance, case {request.envelope.case_id}",
                    },
                )
            today = node.ctx.clock.now().date()
            return rules.appearance(application, extract, request.message_id, today)

        return await casebook.decide(request, decide)

    @node.handler("signage-project")
    async def signage(request: IncomingRequest) -> dict[str, Any]:
        """Check every sign against the rules of placement."""

        async def decide() -> dict[str, Any]:
            today = node.ctx.clock.now().date()
            return rules.signage(request.payload, request.message_id, today)

        return await casebook.decide(request, decide)
