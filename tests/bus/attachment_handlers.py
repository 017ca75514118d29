"""Handlers for attachment tests' node processes: answer with the hashes of what they read."""

from __future__ import annotations

import hashlib
from typing import Any

from exchange.node import IncomingRequest, Node


def read_hashes(request: IncomingRequest) -> str:
    """``name=sha256`` of each attachment, read through its handle in 64 KiB blocks."""
    seen = []
    for file in request.attachments:
        digest = hashlib.sha256()
        with file.open() as handle:
            while block := handle.read(65536):
                digest.update(block)
        seen.append(f"{file.name}={digest.hexdigest()}")
    return " ".join(seen)


def register(node: Node) -> None:
    """Grant every tree-felling permit, noting the hashes of the attachments as read."""

    @node.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        return {"decision": "granted", "note": read_hashes(request)}
