"""Numbers and dates of the documents the departments issue (permits, decisions, conditions).

A document number is derived from the request id, so a handler run again for the same
request issues the same number.
"""

from __future__ import annotations

import calendar
from datetime import date


def document_number(prefix: str, request_id: str, day: date) -> str:
    """``TF-2026-3F9A1C2B``: the prefix, the year and the request id's first eight digits."""
    digits = request_id.replace("-", "")[:8].upper()
    return f"{prefix}-{day.year}-{digits}"


def iso(day: date) -> str:
    """A date as the schemas carry it (YYYY-MM-DD)."""
    return day.isoformat()


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day where it is shorter)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def money(amount: int) -> str:
    """Roubles as the schemas carry them: a decimal string with two decimals."""
    return f"{amount}.00"
