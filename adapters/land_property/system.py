"""The Committee of Land and Property Relations' simulated system: the land register.

``register(node)`` installs the ``land-plot-info`` handler: ``exchange node run land-property``
(the catalog names this adapter). A look-up only reads,
so running it again for the same request gives the same answer.
"""

from __future__ import annotations

from typing import Any

from adapters.land_property.rules import plot_info
from exchange.node import IncomingRequest, Node


def register(node: Node) -> None:
    """Install the handler of ``land-plot-info``."""

    @node.handler("land-plot-info")
    async def land_plot_info(request: IncomingRequest) -> dict[str, Any]:
        """Answer from the land register."""
        return plot_info(request.payload["cadastral_number"])
