"""Citizens' applications as the Single Center's front office takes them in (the demo's stream).

:func:`applications` makes a deterministic stream (by seed) spread evenly over the five
services, alternating XML and JSON envelopes, about the plots of the simulated city. Most
are in order; some name a plot no register knows, ask too much or break a rule, so the
departments refuse them as they would in life. Each payload fits its service's request
schema.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from adapters._city import APPLICANTS, PLOTS, UNREGISTERED, Applicant, Plot
from adapters._files import attached, pdf, photo
from adapters.single_center.config import CITIZEN_SERVICES
from exchange.attachments import Outgoing
from exchange.signing import WireFormat

SPECIES = ("birch", "lime", "poplar", "maple", "ash", "pine", "elm", "willow", "rowan")
SHRUBS = ("lilac", "hawthorn", "dogwood", "honeysuckle")
FACADE_OBJECTS = ("Bakery shop front", "Pharmacy", "Cafe Chak-Chak", "Bank branch", "Bookshop")
SIGN_TEXTS = ("Bakery No. 3", "Apteka", "Chak-Chak", "Ak Bars Bank", "Knigi", "Open 8:00-22:00")
EXCAVATION_PURPOSES = (
    "Replace 40 m of a water main",
    "Repair a heat network section after a leak",
    "Lay a power cable to a new transformer substation",
    "Connect the building to the storm sewer",
    "Lay a fibre-optic line",
)
STORMWATER_OBJECTS = (
    ("Retail pavilion", "Retail"),
    ("Car park", "Parking"),
    ("Office building", "Offices"),
    ("Warehouse", "Storage"),
)


@dataclass(frozen=True, slots=True)
class Application:
    """One citizen's application: its case number, service, payload and envelope format."""

    case_id: str
    service: str
    payload: dict[str, Any]
    wire_format: WireFormat
    documents: tuple[tuple[str, bytes], ...] = ()
    """Files the citizen brought (name, bytes): a tree-felling application's site plan and
    photo of the trees; they travel as the request's attachments."""

    def attachments(self) -> list[Outgoing]:
        """The documents as the SDK takes them (a fresh stream of each, for each filing)."""
        return [attached(name, data) for name, data in self.documents]

    @property
    def asks_another_department(self) -> bool:
        """True when the provider will ask a third department before it decides."""
        if self.service == "tree-felling-permit":
            return "cadastral_number" in self.payload
        if self.service == "architectural-appearance":
            return "cadastral_number" in self.payload["object"]
        return False


def applications(
    count: int, *, today: date, seed: int = 2026, first_case: int = 1
) -> list[Application]:
    """``count`` applications, the services in turn; case ids ``KZN-<year>-<number>``.

    The first application of each service is an ordinary one about a registered plot, so
    any stream of five or more has a tree-felling case that crosses three departments.
    """
    rng = random.Random(seed)
    stream: list[Application] = []
    for index in range(count):
        service = CITIZEN_SERVICES[index % len(CITIZEN_SERVICES)]
        ordinary = index < len(CITIZEN_SERVICES)
        payload = _BUILDERS[service](rng, today, ordinary)
        case_id = f"KZN-{today.year}-{first_case + index:06d}"
        stream.append(
            Application(
                case_id=case_id,
                service=service,
                payload=payload,
                wire_format=WireFormat.XML if index % 2 else WireFormat.JSON,
                documents=_documents(service, case_id, payload),
            )
        )
    return stream


def _documents(
    service: str, case_id: str, payload: dict[str, Any]
) -> tuple[tuple[str, bytes], ...]:
    if service != "tree-felling-permit":
        return ()
    plan = pdf(
        f"Site plan, case {case_id}",
        [f"Address: {payload['address']}", "Trees to fell are marked on the plan.", "Scale 1:500"],
    )
    return (("site-plan.pdf", plan), ("trees.png", photo(case_id)))


def _plot(rng: random.Random, ordinary: bool, *, allow_park: bool = True) -> Plot:
    plots = [p for p in PLOTS.values() if allow_park or p.land_category != "protected"]
    if ordinary:
        return PLOTS["16:50:011302:45"] if allow_park else plots[0]
    return rng.choice(plots)


def _cadastral(rng: random.Random, plot: Plot, ordinary: bool) -> str | None:
    """The plot's number as the citizen wrote it: mostly right, sometimes unknown or absent."""
    if ordinary:
        return plot.cadastral_number
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(UNREGISTERED)
    if roll < 0.18:
        return None
    return plot.cadastral_number


def _applicant(rng: random.Random, kinds: tuple[str, ...]) -> dict[str, str]:
    choices: list[Applicant] = [a for a in APPLICANTS if a.kind in kinds]
    return rng.choice(choices).as_payload()


def _area(value: float) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


def _tree_felling(rng: random.Random, today: date, ordinary: bool) -> dict[str, Any]:
    plot = _plot(rng, ordinary)
    reason = (
        "sanitary"
        if ordinary
        else rng.choice(("sanitary", "construction", "utility-works", "landscaping", "emergency"))
    )
    conditions = {
        "sanitary": ("dry", "emergency", "weakened"),
        "emergency": ("emergency",),
    }.get(reason, ("healthy", "weakened"))
    trees = []
    for species in rng.sample(SPECIES, rng.randint(1, 3)):
        tree: dict[str, Any] = {"species": species, "count": rng.randint(1, 4)}
        if rng.random() < 0.8:
            tree["trunk_diameter_cm"] = rng.randint(12, 80)
        tree["condition"] = rng.choice(conditions)
        trees.append(tree)
    payload: dict[str, Any] = {
        "applicant": _applicant(rng, ("individual", "legal-entity")),
        "address": f"{plot.address}, courtyard",
    }
    number = _cadastral(rng, plot, ordinary)
    if number:
        payload["cadastral_number"] = number
    payload["reason"] = reason
    payload["trees"] = trees
    if rng.random() < 0.4:
        payload["shrubs"] = [{"species": rng.choice(SHRUBS), "count": rng.randint(1, 12)}]
    payload["compensatory_planting"] = rng.random() < 0.5
    return payload


def _appearance(rng: random.Random, today: date, ordinary: bool) -> dict[str, Any]:
    plot = PLOTS["16:50:011101:123"] if ordinary else _plot(rng, False, allow_park=False)
    works = (
        ["facade-painting", "canopy"]
        if ordinary
        else sorted(
            rng.sample(
                ["facade-painting", "facade-repair", "glazing", "canopy", "entrance-group"],
                rng.randint(1, 3),
            )
        )
    )
    if rng.random() < 0.3:
        works.append("architectural-lighting")
    obj: dict[str, Any] = {"name": rng.choice(FACADE_OBJECTS), "address": plot.address}
    number = _cadastral(rng, plot, ordinary)
    if number:
        obj["cadastral_number"] = number
    return {
        "applicant": _applicant(rng, ("sole-proprietor", "legal-entity")),
        "object": obj,
        "works": works,
        "description": f"{', '.join(w.replace('-', ' ') for w in works).capitalize()}: "
        f"{obj['name'].lower()}.",
        "project_sheets": rng.randint(2, 40),
    }


def _signage(rng: random.Random, today: date, ordinary: bool) -> dict[str, Any]:
    plot = _plot(rng, ordinary, allow_park=False)
    text = rng.choice(SIGN_TEXTS)
    signs: list[dict[str, Any]] = [
        {
            "kind": "fascia-sign",
            "text": text,
            "width_mm": 2400 if ordinary else rng.randrange(1200, 5200, 100),
            "height_mm": 600 if ordinary else rng.randrange(400, 1100, 50),
            "illuminated": rng.random() < 0.6,
        }
    ]
    if rng.random() < 0.5:
        signs.append(
            {
                "kind": rng.choice(("plaque", "projecting-sign", "window-display")),
                "text": rng.choice(SIGN_TEXTS),
                "width_mm": rng.randrange(300, 1400, 50),
                "height_mm": rng.randrange(200, 700, 50),
                "illuminated": rng.random() < 0.3,
            }
        )
    return {
        "applicant": _applicant(rng, ("sole-proprietor", "legal-entity")),
        "address": plot.address,
        "signs": signs,
    }


def _excavation(rng: random.Random, today: date, ordinary: bool) -> dict[str, Any]:
    plot = _plot(rng, ordinary, allow_park=False)
    start = today + timedelta(days=rng.randint(3, 20))
    days = 14 if ordinary else rng.choice((5, 10, 14, 21, 30, 45, 75))
    end = start + timedelta(days=days - 1)
    restoration = end + timedelta(days=rng.randint(3, 14))
    renew = not ordinary and rng.random() < 0.15
    payload: dict[str, Any] = {
        "applicant": _applicant(rng, ("legal-entity",)),
        "action": "renew" if renew else "issue",
    }
    if renew and rng.random() < 0.7:
        payload["previous_permit_number"] = f"EX-{today.year}-{rng.randint(1000, 9999)}"
    payload["address"] = f"{plot.address}, courtyard"
    payload["cadastral_number"] = plot.cadastral_number
    payload["purpose"] = rng.choice(EXCAVATION_PURPOSES)
    payload["area_sq_m"] = _area(rng.uniform(8, 400))
    payload["start_date"] = start.isoformat()
    payload["end_date"] = end.isoformat()
    payload["disturbed_elements"] = sorted(
        rng.sample(["lawn", "pavement", "curb", "tree-pit", "other"], rng.randint(1, 3))
    )
    if rng.random() < 0.5:
        payload["contractor"] = {"name": "LLC SpetsStroy", "inn": "1657098765"}
    payload["restoration_date"] = restoration.isoformat()
    return payload


def _stormwater(rng: random.Random, today: date, ordinary: bool) -> dict[str, Any]:
    plot = PLOTS["16:50:160101:9876"] if ordinary else _plot(rng, False, allow_park=False)
    name, purpose = STORMWATER_OBJECTS[0] if ordinary else rng.choice(STORMWATER_OBJECTS)
    area = 1250.75 if ordinary else rng.uniform(300, 6000)
    allowed = area * 0.012
    planned = allowed * (0.9 if ordinary else rng.uniform(0.6, 1.9))
    return {
        "applicant": _applicant(rng, ("sole-proprietor", "legal-entity")),
        "object": {
            "name": name,
            "purpose": purpose,
            "address": plot.address,
            "cadastral_number": plot.cadastral_number,
        },
        "catchment_area_sq_m": _area(area),
        "planned_discharge_l_per_s": f"{planned:.1f}",
        "commissioning_date": (today + timedelta(days=rng.randint(90, 365))).isoformat(),
    }


_BUILDERS: dict[str, Callable[[random.Random, date, bool], dict[str, Any]]] = {
    "architectural-appearance": _appearance,
    "signage-project": _signage,
    "excavation-permit": _excavation,
    "tree-felling-permit": _tree_felling,
    "stormwater-conditions": _stormwater,
}
