"""The Single Center's simulated front-office system: it tells citizens what was decided.

``register(node)`` (``exchange node run single-center``
(the catalog names this adapter)) installs no handler, since the Single Center
provides no service, but listens to the answers its applications get and logs what the
front office tells each citizen. Filing applications is :mod:`.applications`' part.
"""

from __future__ import annotations

import structlog

from exchange.node import Node, Notice

log = structlog.get_logger("adapters.single_center")


def register(node: Node) -> None:
    """Listen for the departments' answers to the citizens' applications."""

    def tell_citizen(notice: Notice) -> None:
        envelope = notice.envelope
        case_id = envelope.case_id if envelope is not None else None
        if notice.kind == "response" and envelope is not None:
            payload = envelope.payload or {}
            log.info(
                "citizen.notified",
                case_id=case_id,
                service=envelope.service.code,
                decision=payload.get("decision"),
            )
        elif notice.kind == "status" and envelope is not None:
            log.info("citizen.status", case_id=case_id, state=(envelope.payload or {}).get("state"))
        elif notice.kind in ("fault", "undelivered"):
            fault = envelope.fault if envelope is not None else None
            log.warning(
                "citizen.case_stuck",
                case_id=case_id,
                request_id=notice.request_id,
                outcome=notice.kind,
                code=fault.code if fault is not None else None,
            )

    node.on_notice(tell_citizen)
