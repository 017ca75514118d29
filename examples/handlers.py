"""A department's handlers to copy: ``exchange node run improvement --handlers examples.handlers``.

Copy this file into your own package (say ``mydept/handlers.py``) and run
``exchange node run PARTY --handlers mydept.handlers:register`` from the directory that holds
``mydept``. Each handler gets a verified, schema-checked request and returns the response
payload (checked against the service's response schema before it is signed and sent).
"""

from __future__ import annotations

from typing import Any

from exchange.node import IncomingRequest, Node, Reject

# Trees a permit may not cover, as the department's own rules say (an example rule).
PROTECTED_SPECIES = {"oak"}


def register(node: Node) -> None:
    """Install this department's handlers on ``node`` (called once, before it starts)."""

    @node.handler("tree-felling-permit")
    async def tree_felling(request: IncomingRequest) -> dict[str, Any]:
        """Grant a permit unless a protected species is to be felled.

        ``request.message_id`` is the idempotency key: a handler killed midway runs again
        with the same id, so key anything you record in your own system by it.
        """
        application = request.payload
        if not application.get("trees"):
            # A signed fault goes back to the requester; the request is not retried.
            raise Reject("invalid-content", "the application lists no trees")
        species = {tree["species"] for tree in application["trees"]}
        if species & PROTECTED_SPECIES:
            return {
                "decision": "refused",
                "refusal_reasons": [
                    f"protected species {name}: felling needs the city council's consent"
                    for name in sorted(species & PROTECTED_SPECIES)
                ],
            }
        return {
            "decision": "granted",
            "permit_number": f"TF-{request.message_id[:8]}",
            "valid_until": "2027-10-31",
            "compensation_rub": "0.00",
        }
