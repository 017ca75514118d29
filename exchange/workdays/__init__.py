"""Kazan's working calendar: which days are working days, and due dates counted in them.

A leaf under both ``node`` (due dates, overdue sweeps) and ``deadlines`` (the report).
"""

from exchange.workdays.calendar import KAZAN_TZ, WorkCalendar, kazan_calendar

__all__ = ["KAZAN_TZ", "WorkCalendar", "kazan_calendar"]
