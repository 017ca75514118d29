"""The Department of Architecture's rules: facade appearance and signage on buildings."""

from __future__ import annotations

from datetime import date
from typing import Any

from adapters._city import HISTORIC_STREETS
from adapters._documents import add_months, document_number, iso

APPROVAL_MONTHS = 24
# Works that change what the street sees beyond the facade line.
PROTRUDING = frozenset({"canopy", "entrance-group"})
# Signage limits, millimetres (rules for placing information structures in Kazan).
FASCIA_MAX_HEIGHT = 900
HISTORIC_FASCIA_MAX_WIDTH = 3000
PROJECTING_MAX = 1200
PLAQUE_MAX = (600, 400)


def appearance(
    application: dict[str, Any], extract: dict[str, Any] | None, request_id: str, today: date
) -> dict[str, Any]:
    """Approve or refuse the appearance of an object; ``extract`` is the urban-plan-extract.

    ``extract`` is None when the application names no cadastral number (then only the
    project itself is judged).
    """
    works = set(application["works"])
    if extract is not None and not extract["found"]:
        return _refused(
            f"The plot {extract['cadastral_number']} is not in the urban-planning "
            "documentation; apply with the plot's current cadastral number",
            today,
        )
    if extract is not None and extract.get("crosses_red_lines") and works & PROTRUDING:
        return _refused(
            "A canopy or an entrance group may not extend beyond the red lines that cross "
            "the plot (land use and development rules of Kazan, art. 33)",
            today,
        )
    conditions: list[str] = []
    zones = extract.get("protection_zones", []) if extract else []
    if any("heritage" in zone.lower() for zone in zones):
        conditions.append(
            "Keep the historic colour scheme and the original window frames; agree the "
            "colour samples with the Committee for the Protection of Cultural Heritage"
        )
    if "architectural-lighting" in works:
        conditions.append("Warm white light (2700-3000 K), no dynamic or coloured effects")
    if application["project_sheets"] < 3:
        conditions.append("Submit the facade colour passport before the works start")
    decision: dict[str, Any] = {
        "decision": "approved",
        "decision_number": document_number("AA", request_id, today),
        "decision_date": iso(today),
        "valid_until": iso(add_months(today, APPROVAL_MONTHS)),
    }
    if conditions:
        decision["conditions"] = conditions
    return decision


def signage(application: dict[str, Any], request_id: str, today: date) -> dict[str, Any]:
    """Approve or refuse a design project of signs on a building's exterior."""
    historic = any(street in application["address"] for street in HISTORIC_STREETS)
    reasons: list[str] = []
    for sign in application["signs"]:
        kind, width, height = sign["kind"], sign["width_mm"], sign["height_mm"]
        if kind == "fascia-sign" and height > FASCIA_MAX_HEIGHT:
            reasons.append(
                f"The fascia sign {sign['text']!r} is {height} mm high; at most "
                f"{FASCIA_MAX_HEIGHT} mm (rules of placement, item 4.1)"
            )
        if kind == "fascia-sign" and historic and width > HISTORIC_FASCIA_MAX_WIDTH:
            reasons.append(
                f"The fascia sign {sign['text']!r} covers the cornice of a heritage building "
                "(rules of placement, item 4.2)"
            )
        if kind == "projecting-sign" and max(width, height) > PROJECTING_MAX:
            reasons.append(
                f"The projecting sign {sign['text']!r} exceeds {PROJECTING_MAX} mm "
                "(rules of placement, item 5.3)"
            )
        if kind == "plaque" and (width > PLAQUE_MAX[0] or height > PLAQUE_MAX[1]):
            reasons.append(
                f"The plaque {sign['text']!r} exceeds {PLAQUE_MAX[0]}x{PLAQUE_MAX[1]} mm "
                "(rules of placement, item 6.1)"
            )
        if kind == "roof-installation" and historic:
            reasons.append("Roof installations are not allowed in the historic centre (item 7.2)")
    if reasons:
        return {"decision": "refused", "decision_date": iso(today), "refusal_reasons": reasons}
    return {
        "decision": "approved",
        "approval_number": document_number("SP", request_id, today),
        "decision_date": iso(today),
    }


def _refused(reason: str, today: date) -> dict[str, Any]:
    return {"decision": "refused", "decision_date": iso(today), "refusal_reasons": [reason]}
