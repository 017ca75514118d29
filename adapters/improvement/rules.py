"""The Committee of External Improvement's rules: tree-felling permits, stormwater conditions.

Pure functions of the application, the data other departments gave, and the day: the
simulated officer's decision, shaped as the service's response schema requires.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from adapters._documents import add_months, document_number, iso, money

# Compensation for felling a tree that is still alive, roubles per tree (the city's
# methodology values a tree by its condition; dry and emergency trees cost nothing).
COMPENSATION_RUB = {"healthy": 24_000, "weakened": 9_500, "dry": 0, "emergency": 0}
# Reasons that need no compensation: the tree is a danger, or it is dead anyway.
FREE_REASONS = frozenset({"sanitary", "emergency"})
# Reasons that justify felling healthy trees in a protected natural area: none but danger.
PROTECTED_ALLOWED = FREE_REASONS
# Compensatory planting: two young trees for each living tree felled, one for a dead one.
REPLANT_PER_LIVING_TREE = 2
REPLANT_PER_DEAD_TREE = 1
REPLANT_SPECIES = "lime"  # the city's standard street tree
PERMIT_MONTHS = 6
# Stormwater: what a plot may discharge, litres per second per square metre of catchment
# (a design rain of 120 l/s per hectare), and the tolerance before a retention tank is needed.
RUNOFF_L_PER_S_PER_SQ_M = Decimal("0.012")
TOLERANCE = Decimal("1.5")
CONDITIONS_YEARS = 3


def tree_felling(
    application: dict[str, Any], plot: dict[str, Any] | None, request_id: str, today: date
) -> dict[str, Any]:
    """Grant or refuse a permit to fell trees; ``plot`` is Land and Property's land-plot-info.

    ``plot`` is None when the application names no cadastral number.
    """
    reason = application["reason"]
    trees: list[dict[str, Any]] = application["trees"]
    if plot is not None and not plot["found"]:
        return _refused(
            f"The land plot {plot['cadastral_number']} is not in the land register "
            "(answer of the Committee of Land and Property Relations); "
            "apply with the plot's current cadastral number"
        )
    alive = [t for t in trees if t.get("condition", "healthy") in ("healthy", "weakened")]
    protected = plot is not None and plot.get("land_category") == "protected"
    if protected and alive and reason not in PROTECTED_ALLOWED:
        return _refused(
            "Healthy trees in a specially protected natural area may be felled only "
            "when they are a danger (rules of external improvement of Kazan, item 7.4)"
        )
    felled_alive = sum(int(t["count"]) for t in alive)
    compensation = 0
    if reason not in FREE_REASONS and not application["compensatory_planting"]:
        compensation = sum(
            COMPENSATION_RUB[t.get("condition", "healthy")] * int(t["count"]) for t in alive
        )
    decision: dict[str, Any] = {
        "decision": "granted",
        "permit_number": document_number("TF", request_id, today),
        "valid_until": iso(add_months(today, PERMIT_MONTHS)),
        "compensation_rub": money(compensation),
    }
    felled_dead = sum(int(t["count"]) for t in trees) - felled_alive
    if application["compensatory_planting"]:
        count = felled_alive * REPLANT_PER_LIVING_TREE + felled_dead * REPLANT_PER_DEAD_TREE
        decision["replanting"] = [{"species": REPLANT_SPECIES, "count": count}]
    return decision


def stormwater(
    application: dict[str, Any], well: str | None, request_id: str, today: date
) -> dict[str, Any]:
    """Issue technical conditions for draining a plot's storm and melt water, or refuse.

    ``well`` is the storm sewer well nearest the plot (``K-17 on pr. Pobedy``), if the
    committee's network register knows the plot.
    """
    area = Decimal(application["catchment_area_sq_m"])
    allowed = (area * RUNOFF_L_PER_S_PER_SQ_M).quantize(Decimal("0.1"))
    planned_text = application.get("planned_discharge_l_per_s")
    planned = Decimal(planned_text) if planned_text is not None else allowed
    if allowed <= 0:
        return _refused("The catchment area is empty: there is nothing to drain")
    if planned > allowed * TOLERANCE:
        return _refused(
            f"The planned discharge of {planned} l/s exceeds {allowed * TOLERANCE} l/s, "
            "what the storm sewer takes from this catchment; provide a retention tank "
            "and apply again"
        )
    requirements = ["Oil and sand separator before the connection"]
    if area > 1000:
        requirements.append("Curb inlet with a grate of class C250")
    if planned > allowed:
        requirements.append(
            f"Retention tank for the excess of {planned - allowed} l/s over a 20-minute rain"
        )
    obj = application["object"]
    point = (
        f"Storm sewer well {well}"
        if well
        else f"Storm sewer nearest to {obj['address']}, to be shown on the site plan"
    )
    return {
        "decision": "issued",
        "conditions_number": document_number("SW", request_id, today),
        "valid_until": iso(add_months(today, 12 * CONDITIONS_YEARS)),
        "connection_point": point,
        "max_discharge_l_per_s": str(min(planned, allowed)),
        "requirements": requirements,
    }


def _refused(reason: str) -> dict[str, Any]:
    return {"decision": "refused", "refusal_reasons": [reason]}
