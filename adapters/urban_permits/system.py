"""The Management of Urban-Planning Permits' simulated system: permits and the zoning plan.

``register(node)`` installs its handlers: ``exchange node run urban-permits``
(the catalog names this adapter).
"""

from __future__ import annotations

from typing import Any

from adapters._casebook import Casebook
from adapters.urban_permits import rules
from adapters.urban_permits.config import CONFIG
from exchange.node import IncomingRequest, Node


def register(node: Node) -> None:
    """Install the handlers of ``excavation-permit`` and ``urban-plan-extract``."""
    casebook = Casebook(node, CONFIG)

    @node.handler("excavation-permit")
    async def excavation(request: IncomingRequest) -> dict[str, Any]:
        """Issue, renew or refuse the permit (contradictory dates: a signed fault)."""

        async def decide() -> dict[str, Any]:
            today = node.ctx.clock.now().date()
            return rules.excavation(request.payload, request.message_id, today)

        return await casebook.decide(request, decide)

    @node.handler("urban-plan-extract")
    async def urban_plan_extract(request: IncomingRequest) -> dict[str, Any]:
        """Answer from the zoning plan."""
        return rules.plan_extract(request.payload["cadastral_number"])
