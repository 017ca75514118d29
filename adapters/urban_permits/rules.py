"""Urban-Planning Permits' rules: excavation permits and extracts from the zoning plan."""

from __future__ import annotations

from datetime import date
from typing import Any

from adapters._city import PLOTS, ZONES, Plot
from adapters._documents import document_number
from exchange.node import Reject

MAX_WORK_DAYS = 60  # one permit covers at most this many days of works
MAX_RESTORATION_DAYS = 30  # landscaping restored at most this long after the works end
# Elements whose disturbance needs the works to stop for the summer season (May-September).
SEASONAL = frozenset({"playground", "tree-pit"})


def excavation(application: dict[str, Any], request_id: str, today: date) -> dict[str, Any]:
    """Issue, renew or refuse an excavation permit.

    Raises:
        Reject: the dates contradict each other (``invalid-content``): no decision is
            possible on such an application; the sender gets a signed fault.
    """
    start = date.fromisoformat(application["start_date"])
    end = date.fromisoformat(application["end_date"])
    restoration = date.fromisoformat(application["restoration_date"])
    if end < start:
        raise Reject("invalid-content", "end_date is before start_date")
    if restoration < end:
        raise Reject("invalid-content", "restoration_date is before end_date")
    reasons: list[str] = []
    renew = application["action"] == "renew"
    previous = application.get("previous_permit_number")
    if renew and not previous:
        reasons.append("A renewal must name the permit to renew (previous_permit_number)")
    if (end - start).days + 1 > MAX_WORK_DAYS:
        reasons.append(
            f"The works last {(end - start).days + 1} days; one permit covers at most "
            f"{MAX_WORK_DAYS} days (apply for a renewal for the rest)"
        )
    if (restoration - end).days > MAX_RESTORATION_DAYS:
        reasons.append(
            f"Landscaping must be restored within {MAX_RESTORATION_DAYS} days after the works"
        )
    if start < today:
        reasons.append("The works cannot start before the permit is issued")
    seasonal = SEASONAL & set(application["disturbed_elements"])
    if seasonal and any(5 <= day.month <= 9 for day in (start, end)):
        reasons.append(
            f"Works disturbing {', '.join(sorted(seasonal))} are not allowed from May to "
            "September (playground season)"
        )
    if reasons:
        return {"decision": "refused", "refusal_reasons": reasons}
    number = f"{previous}-R" if renew and previous else document_number("EX", request_id, today)
    return {
        "decision": "renewed" if renew else "issued",
        "permit_number": number[:50],
        "valid_from": application["start_date"],
        "valid_until": application["end_date"],
        "restoration_deadline": application["restoration_date"],
    }


def plan_extract(cadastral_number: str, plan: dict[str, Plot] = PLOTS) -> dict[str, Any]:
    """The zoning plan's entry for a plot, or ``found: false``."""
    plot = plan.get(cadastral_number)
    if plot is None:
        return {"cadastral_number": cadastral_number, "found": False}
    zone = ZONES[plot.zone]
    extract: dict[str, Any] = {
        "cadastral_number": cadastral_number,
        "found": True,
        "territorial_zone": zone.code,
        "zone_name": zone.name,
        "permitted_uses": list(zone.permitted_uses),
        "max_floors": zone.max_floors,
        "max_coverage_percent": zone.max_coverage_percent,
        "crosses_red_lines": plot.crosses_red_lines,
    }
    if plot.protection_zones:
        extract["protection_zones"] = list(plot.protection_zones)
    return extract
