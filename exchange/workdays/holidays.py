"""Non-working days in Kazan: Russian federal holidays and Tatarstan's, as data.

Sources:

* Federal (``RU``): Labour Code art. 112 (1-8 January, 23 February, 8 March, 1 and 9 May,
  12 June, 4 November; a holiday on a Saturday or Sunday, other than in January, moves the
  day off to the next working day) and the government's yearly decree moving days off
  (2026: decree of September 2025, 3 January to 9 January and 4 January to 31 December).
* Tatarstan (``RU-TA``): the republic's law on holidays and memorial dates: Republic Day
  (30 August), Constitution Day (6 November), and Uraza Bayram and Kurban Bayram on the
  dates the Rais decrees each January. A republic holiday on a weekend is not moved.

2026 is complete. 2027 holds only what follows from the laws themselves; still missing,
to add when published (until then due dates come out a day early, never late):

* the federal decree for 2027 (autumn 2026): where the days off of Saturday 2 and Sunday
  3 January go, and any other transfer (a draft reported in December 2025 gives Friday
  5 November off and makes Saturday 13 November a working day);
* the Rais's decree for 2027 (January 2027): the dates of Uraza Bayram and Kurban Bayram.

Add a year by appending to ``HOLIDAYS`` (and ``WORKING_WEEKENDS`` for a Saturday made a
working day) and to ``COVERED_YEARS``; ``tests/deadlines/test_calendar.py`` counts each
year's working days against the official production calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

FEDERAL = "RU"
TATARSTAN = "RU-TA"
KAZAN = (FEDERAL, TATARSTAN)


@dataclass(frozen=True, slots=True)
class Holiday:
    """One non-working day (or, in ``WORKING_WEEKENDS``, one weekend day that is worked)."""

    day: date
    name: str
    region: str  # "RU" federal, "RU-TA" Tatarstan
    basis: str  # the law or decree that makes it so


_LC = "Labour Code art. 112"
_LC_MOVED = "Labour Code art. 112 (moved from a weekend)"
_DECREE_2026 = "Government decree on moving days off in 2026"
_TA_LAW = "Tatarstan law on holidays and memorial dates"
_TA_DECREE_2026 = "Decree of the Rais of Tatarstan, January 2026"


def _new_year(year: int) -> tuple[Holiday, ...]:
    names = {7: "Orthodox Christmas"}
    return tuple(
        Holiday(date(year, 1, day), names.get(day, "New Year holidays"), FEDERAL, _LC)
        for day in range(1, 9)
    )


HOLIDAYS: tuple[Holiday, ...] = (
    # --- 2026 (complete) ------------------------------------------------------------------
    *_new_year(2026),
    Holiday(date(2026, 1, 9), "New Year holidays (day off of 3 January)", FEDERAL, _DECREE_2026),
    Holiday(date(2026, 2, 23), "Defender of the Fatherland Day", FEDERAL, _LC),
    Holiday(date(2026, 3, 8), "International Women's Day", FEDERAL, _LC),
    Holiday(date(2026, 3, 9), "International Women's Day (day off of 8 March)", FEDERAL, _LC_MOVED),
    Holiday(date(2026, 3, 20), "Uraza Bayram", TATARSTAN, _TA_DECREE_2026),
    Holiday(date(2026, 5, 1), "Spring and Labour Day", FEDERAL, _LC),
    Holiday(date(2026, 5, 9), "Victory Day", FEDERAL, _LC),
    Holiday(date(2026, 5, 11), "Victory Day (day off of 9 May)", FEDERAL, _LC_MOVED),
    Holiday(date(2026, 5, 27), "Kurban Bayram", TATARSTAN, _TA_DECREE_2026),
    Holiday(date(2026, 6, 12), "Russia Day", FEDERAL, _LC),
    Holiday(date(2026, 8, 30), "Republic of Tatarstan Day", TATARSTAN, _TA_LAW),
    Holiday(date(2026, 11, 4), "National Unity Day", FEDERAL, _LC),
    Holiday(date(2026, 11, 6), "Constitution Day of Tatarstan", TATARSTAN, _TA_LAW),
    Holiday(date(2026, 12, 31), "New Year's Eve (day off of 4 January)", FEDERAL, _DECREE_2026),
    # --- 2027 (laws only; see the module docstring for what is pending) -------------------
    *_new_year(2027),
    Holiday(date(2027, 2, 23), "Defender of the Fatherland Day", FEDERAL, _LC),
    Holiday(date(2027, 3, 8), "International Women's Day", FEDERAL, _LC),
    Holiday(date(2027, 5, 1), "Spring and Labour Day", FEDERAL, _LC),
    Holiday(date(2027, 5, 3), "Spring and Labour Day (day off of 1 May)", FEDERAL, _LC_MOVED),
    Holiday(date(2027, 5, 9), "Victory Day", FEDERAL, _LC),
    Holiday(date(2027, 5, 10), "Victory Day (day off of 9 May)", FEDERAL, _LC_MOVED),
    Holiday(date(2027, 6, 12), "Russia Day", FEDERAL, _LC),
    Holiday(date(2027, 6, 14), "Russia Day (day off of 12 June)", FEDERAL, _LC_MOVED),
    Holiday(date(2027, 8, 30), "Republic of Tatarstan Day", TATARSTAN, _TA_LAW),
    Holiday(date(2027, 11, 4), "National Unity Day", FEDERAL, _LC),
    Holiday(date(2027, 11, 6), "Constitution Day of Tatarstan", TATARSTAN, _TA_LAW),
)
"""Every non-working holiday (weekend ones too, for the record), in date order."""

WORKING_WEEKENDS: tuple[Holiday, ...] = ()
"""Saturdays or Sundays made working days by a decree (none in 2026)."""

COVERED_YEARS: tuple[int, ...] = (2026, 2027)
"""Years for which the lists above are kept; outside them only weekends are days off."""


def non_working_days(regions: Iterable[str] = KAZAN) -> frozenset[date]:
    """The holidays of the given regions (default: federal and Tatarstan, i.e. Kazan)."""
    wanted = set(regions)
    return frozenset(h.day for h in HOLIDAYS if h.region in wanted)


def working_weekends(regions: Iterable[str] = KAZAN) -> frozenset[date]:
    """The weekend days worked in the given regions."""
    wanted = set(regions)
    return frozenset(h.day for h in WORKING_WEEKENDS if h.region in wanted)
