"""The simulated city the demo's departmental systems share: land plots, zones, applicants.

Land and Property keeps the land register (:data:`PLOTS`), Urban-Planning Permits the
zoning plan (:data:`ZONES` and each plot's zone), and the Single Center's citizens apply
about these plots. A few cadastral numbers (:data:`UNREGISTERED`) are in no register: the
providers find nothing and refuse, as a real department would.

The example payloads in ``tests/data/examples/`` are about plots of this register.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Right:
    """A registered right to a plot."""

    kind: str  # ownership, lease, permanent-use, free-use
    holder: str
    registered_on: str  # YYYY-MM-DD
    until: str | None = None  # leases end


@dataclass(frozen=True, slots=True)
class Zone:
    """A territorial zone of Kazan's land use and development rules."""

    code: str
    name: str
    permitted_uses: tuple[str, ...]
    max_floors: int
    max_coverage_percent: int


@dataclass(frozen=True, slots=True)
class Plot:
    """A land plot as the land register and the zoning plan know it."""

    cadastral_number: str
    address: str
    area_sq_m: str
    land_category: str
    permitted_use: str
    rights: tuple[Right, ...]
    zone: str
    encumbrances: tuple[str, ...] = ()
    protection_zones: tuple[str, ...] = ()
    crosses_red_lines: bool = False
    storm_well: str = "K-1"  # the nearest well of the city storm sewer

    @property
    def heritage(self) -> bool:
        """True when a heritage protection zone covers the plot."""
        return any("heritage" in zone.lower() for zone in self.protection_zones)

    @property
    def street(self) -> str:
        """The street part of the address (``ul. Baumana`` of ``Kazan, ul. Baumana 44``)."""
        place = self.address.removeprefix("Kazan, ").split(",")[0]
        return place.rsplit(" ", 1)[0] if place[-1:].isdigit() else place


ZONES: dict[str, Zone] = {
    zone.code: zone
    for zone in (
        Zone(
            "TsI",
            "Historic centre zone",
            ("Shops", "Cafes and restaurants", "Offices", "Museums"),
            5,
            60,
        ),
        Zone(
            "Zh3",
            "Mid-rise residential zone",
            ("Mid-rise residential buildings", "Shops", "Playgrounds"),
            8,
            40,
        ),
        Zone(
            "Zh4",
            "High-rise residential zone",
            ("High-rise residential buildings", "Shops", "Kindergartens"),
            25,
            30,
        ),
        Zone("OD1", "Business and commercial zone", ("Offices", "Shops", "Hotels"), 16, 50),
        Zone("R1", "Parks and public gardens zone", ("Parks", "Playgrounds", "Kiosks"), 1, 5),
        Zone("P2", "Utilities and warehouses zone", ("Warehouses", "Utility networks"), 4, 60),
    )
}

_HERITAGE = "Protection zone of heritage sites of the historic centre"
_OWNERS = "Owners of the apartment building"

PLOTS: dict[str, Plot] = {
    plot.cadastral_number: plot
    for plot in (
        Plot(
            "16:50:011101:123",
            "Kazan, ul. Baumana 44",
            "612",
            "settlements",
            "Shops and catering",
            (Right("ownership", "LLC Kazan Bakery No. 3", "2011-04-18"),),
            "TsI",
            protection_zones=(_HERITAGE,),
            storm_well="K-3",
        ),
        Plot(
            "16:50:011302:45",
            "Kazan, ul. Pushkina 12",
            "2431",
            "settlements",
            "Multi-apartment residential buildings",
            (Right("ownership", _OWNERS, "2014-07-21"),),
            "Zh3",
            encumbrances=("Heat network protection zone",),
            storm_well="K-9",
        ),
        Plot(
            "16:50:050101:77",
            "Kazan, ul. Dekabristov 85",
            "3810",
            "settlements",
            "Multi-apartment residential buildings",
            (Right("ownership", _OWNERS, "2009-02-11"),),
            "Zh3",
            encumbrances=("Water main protection zone",),
            storm_well="K-21",
        ),
        Plot(
            "16:50:160101:9876",
            "Kazan, pr. Pobedy 141",
            "1980",
            "settlements",
            "Retail",
            (Right("lease", "LLC Kazan Bakery No. 3", "2023-06-01", until="2033-05-31"),),
            "OD1",
            storm_well="K-17",
        ),
        Plot(
            "16:50:011204:8",
            "Kazan, ul. Kremlyovskaya 21",
            "1150",
            "settlements",
            "Offices",
            (Right("permanent-use", "Kazan Federal University", "1996-10-02"),),
            "TsI",
            protection_zones=(_HERITAGE, "Kazan Kremlin buffer zone"),
            storm_well="K-2",
        ),
        Plot(
            "16:50:040312:19",
            "Kazan, ul. Chistopolskaya 64",
            "5200",
            "settlements",
            "High-rise residential buildings",
            (Right("ownership", _OWNERS, "2016-12-09"),),
            "Zh4",
            crosses_red_lines=True,
            storm_well="K-40",
        ),
        Plot(
            "16:50:080205:311",
            "Kazan, Gorkinsko-Ometyevsky forest park",
            "412000",
            "protected",
            "Recreation",
            (Right("permanent-use", "Committee of External Improvement", "2005-03-30"),),
            "R1",
            protection_zones=("Specially protected natural area",),
            storm_well="K-64",
        ),
        Plot(
            "16:50:070409:52",
            "Kazan, ul. Gvardeyskaya 33",
            "2875",
            "settlements",
            "Multi-apartment residential buildings",
            (Right("ownership", _OWNERS, "2012-05-14"),),
            "Zh3",
            storm_well="K-48",
        ),
        Plot(
            "16:50:100117:6",
            "Kazan, ul. Yamasheva 97",
            "7400",
            "settlements",
            "Shopping centre",
            (Right("lease", "JSC Tandem Retail", "2019-01-15", until="2039-01-14"),),
            "OD1",
            crosses_red_lines=True,
            storm_well="K-71",
        ),
        Plot(
            "16:50:090214:40",
            "Kazan, ul. Tekhnicheskaya 10",
            "9650",
            "industrial",
            "Warehouses",
            (Right("ownership", "MUP Vodokanal", "2001-08-27"),),
            "P2",
            encumbrances=("Sewer collector protection zone",),
            storm_well="K-88",
        ),
    )
}

UNREGISTERED = ("16:50:999901:1", "16:50:999902:17")
"""Cadastral numbers citizens sometimes write that no register knows (typos, old numbers)."""

HISTORIC_STREETS = ("ul. Baumana", "ul. Kremlyovskaya", "ul. Karla Marksa", "ul. Pushkina")
"""Streets of the historic centre, where signage on facades is restricted."""


@dataclass(frozen=True, slots=True)
class Applicant:
    """Someone who files applications at the Single Center."""

    kind: str  # individual, sole-proprietor, legal-entity
    name: str
    phone: str
    inn: str | None = None
    email: str | None = None

    def as_payload(self) -> dict[str, str]:
        """The ``applicant`` object of the service schemas."""
        data = {"kind": self.kind, "name": self.name}
        if self.inn:
            data["inn"] = self.inn
        data["phone"] = self.phone
        if self.email:
            data["email"] = self.email
        return data


APPLICANTS = (
    Applicant("individual", "Gulnara Rustemovna Safina", "+79172345678", None, "gs@example.ru"),
    Applicant("individual", "Ildar Maratovich Khakimov", "+79061112233"),
    Applicant("individual", "Elena Sergeevna Volkova", "+79273334455", "165501234567"),
    Applicant("sole-proprietor", "IP Nurieva Alsu Rinatovna", "+79600001122", "166012345678"),
    Applicant(
        "legal-entity", "LLC Kazan Bakery No. 3", "+78432123456", "1655012345", "ok@bakery.example"
    ),
    Applicant("legal-entity", "MUP Vodokanal", "+78432311111", "1653006666", "p@vodokanal.example"),
    Applicant("legal-entity", "HOA Pushkina 12", "+78432905050", "1655300123"),
    Applicant("legal-entity", "LLC SpetsStroy", "+78432900000", "1657098765"),
)
