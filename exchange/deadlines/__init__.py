"""Deadlines: due dates from the catalog's regulated terms, and the report on meeting them."""

from exchange.deadlines.report import OpenRequest, SlaReport, Turnaround, percentile, sla_report
from exchange.workdays.calendar import KAZAN_TZ, WorkCalendar, kazan_calendar

__all__ = [
    "KAZAN_TZ",
    "OpenRequest",
    "SlaReport",
    "Turnaround",
    "WorkCalendar",
    "kazan_calendar",
    "percentile",
    "sla_report",
]
