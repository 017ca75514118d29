"""The Committee of External Improvement's simulated departmental system (the demo's).

``register(node)`` installs its handlers: ``exchange node run improvement``
(the catalog names this adapter). A tree-felling application with a cadastral number
makes it ask Land and Property for the plot first, so the citizen's case crosses three
departments: Single Center -> Improvement -> Land and Property and back. While the plot's
answer is outstanding the request is parked (``Waiting``), not failed.
"""

from __future__ import annotations

from typing import Any

import structlog

from adapters._casebook import Casebook
from adapters._city import PLOTS
from adapters._files import attached, pdf
from adapters.improvement import rules
from adapters.improvement.config import CONFIG
from exchange.node import IncomingRequest, Node, Reply

log = structlog.get_logger("adapters.improvement")

# The committee's own register of the storm sewer: the well nearest each plot.
STORM_WELLS = {number: f"{plot.storm_well} on {plot.street}" for number, plot in PLOTS.items()}


def register(node: Node) -> None:
    """Install the handlers of ``tree-felling-permit`` and ``stormwater-conditions``."""
    casebook = Casebook(node, CONFIG)

    @node.handler("tree-felling-permit")
    async def tree_felling(request: IncomingRequest) -> dict[str, Any] | Reply:
        """Ask Land and Property about the plot, then grant or refuse the permit (a granted
        permit travels as a PDF beside the signed response)."""

        async def decide() -> dict[str, Any]:
            application = request.payload
            plot: dict[str, Any] | None = None
            number = application.get("cadastral_number")
            if number:
                await casebook.tell(
                    request,
                    "waiting-for-data",
                    "asked the Committee of Land and Property Relations about the plot",
                )
                plot = await casebook.ask(
                    request,
                    "land-plot-info",
                    {
                        "cadastral_number": number,
                        "purpose": f"Tree felling permit, case {request.envelope.case_id}",
                    },
                )
            today = node.ctx.clock.now().date()
            return rules.tree_felling(application, plot, request.message_id, today)

        decision = await casebook.decide(request, decide)
        log.info("improvement.decided", case_id=request.envelope.case_id, **_brief(decision))
        if decision["decision"] != "granted":
            return decision
        permit = pdf(
            f"Tree felling permit {decision.get('permit_number', '')}",
            [
                f"Case {request.envelope.case_id}",
                f"Address: {request.payload.get('address', '')}",
                "Issued by the Committee of External Improvement of Kazan",
            ],
        )
        return Reply(decision, [attached("permit.pdf", permit)])

    @node.handler("stormwater-conditions")
    async def stormwater(request: IncomingRequest) -> dict[str, Any]:
        """Issue technical conditions from the committee's storm sewer register."""

        async def decide() -> dict[str, Any]:
            application = request.payload
            well = STORM_WELLS.get(application["object"]["cadastral_number"])
            today = node.ctx.clock.now().date()
            return rules.stormwater(application, well, request.message_id, today)

        return await casebook.decide(request, decide)


def _brief(decision: dict[str, Any]) -> dict[str, Any]:
    return {"decision": decision["decision"], "number": decision.get("permit_number")}
