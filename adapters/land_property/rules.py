"""Land and Property's register look-up: a plot as ``land-plot-info`` answers it."""

from __future__ import annotations

from typing import Any

from adapters._city import PLOTS, Plot


def plot_info(cadastral_number: str, register: dict[str, Plot] = PLOTS) -> dict[str, Any]:
    """The register's entry for a plot, or ``found: false`` when it has none."""
    plot = register.get(cadastral_number)
    if plot is None:
        return {"cadastral_number": cadastral_number, "found": False}
    info: dict[str, Any] = {
        "cadastral_number": plot.cadastral_number,
        "found": True,
        "address": plot.address,
        "area_sq_m": plot.area_sq_m,
        "land_category": plot.land_category,
        "permitted_use": plot.permitted_use,
        "rights": [
            {
                "kind": right.kind,
                "holder": right.holder,
                "registered_on": right.registered_on,
                **({"until": right.until} if right.until else {}),
            }
            for right in plot.rights
        ],
    }
    if plot.encumbrances:
        info["encumbrances"] = list(plot.encumbrances)
    return info
