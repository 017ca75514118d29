"""Handlers for node processes started by the chaos tests (``--handlers`` of ``node run``)."""

from __future__ import annotations

from typing import Any

from exchange.node import IncomingRequest, Node


def register(node: Node) -> None:
    """Grant every tree-felling permit at once, numbered by the request id."""

    @node.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        return {"decision": "granted", "permit_number": request.message_id}
