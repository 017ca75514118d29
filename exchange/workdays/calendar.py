"""Due dates: a request's regulated deadline counted in calendar or working days in Kazan.

The rules are those of the Civil Code (arts. 191 and 193) that the service regulations use:

* Counting starts the day after the request is received (in Kazan time): a request received
  on Monday with a 1-day deadline is due on Tuesday, whatever the hour it came in.
* Calendar days: the due date is the receipt date plus ``days``; if that is not a working
  day, the due date moves to the next working day (``roll_forward``, on by default).
* Working days: the due date is the ``days``-th working day after the receipt date;
  working days are Monday to Friday, less public holidays, plus any weekend day a decree
  made a working day.
* A request is on time if answered before the end of its due date (midnight Kazan time).

Kazan keeps Moscow time, UTC+3 all year since 2014; a fixed offset needs no tz database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import cache

from exchange.catalog.model import Deadline
from exchange.workdays import holidays

KAZAN_TZ = timezone(timedelta(hours=3), "MSK")
_DAY = timedelta(days=1)
_SATURDAY = 5


class WorkCalendar:
    """Which days are worked in one place, and due dates counted in them.

    Args:
        holidays: non-working days (weekend ones may be listed too; they change nothing).
        working_weekends: Saturdays or Sundays a decree made working days.
        tz: the local time zone deciding which date a moment falls on.
        roll_forward: move a calendar-day due date off a non-working day (Civil Code
            art. 193).
        years: the years the holiday lists are kept for (default: the years they mention);
            ``covers`` tells whether a date is in them.
    """

    def __init__(
        self,
        holidays: Iterable[date] = (),
        *,
        working_weekends: Iterable[date] = (),
        tz: tzinfo = KAZAN_TZ,
        roll_forward: bool = True,
        years: Iterable[int] | None = None,
    ) -> None:
        self.holidays = frozenset(holidays)
        self.working_weekends = frozenset(working_weekends)
        self.tz = tz
        self.roll_forward = roll_forward
        if years is None:
            years = {day.year for day in self.holidays | self.working_weekends}
        self.years = frozenset(years)

    def covers(self, day: date) -> bool:
        """Whether the holiday lists are kept for ``day``'s year (outside: weekends only)."""
        return day.year in self.years

    def local_date(self, moment: datetime) -> date:
        """The date ``moment`` falls on in local time.

        Raises:
            ValueError: ``moment`` is naive (all times in the exchange are aware).
        """
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{moment.isoformat()} has no time zone")
        return moment.astimezone(self.tz).date()

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday and not a holiday, or a weekend day made a working day."""
        if day in self.working_weekends:
            return True
        return day.weekday() < _SATURDAY and day not in self.holidays

    def next_working_day(self, day: date) -> date:
        """``day`` if it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += _DAY
        return day

    def add_working_days(self, day: date, count: int) -> date:
        """The ``count``-th working day after ``day`` (``day`` itself for 0).

        Raises:
            ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError("count must not be negative")
        while count:
            day += _DAY
            if self.is_working_day(day):
                count -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days fall after ``start``, up to and including ``end``."""
        count = 0
        day = start + _DAY
        while day <= end:
            count += self.is_working_day(day)
            day += _DAY
        return count

    def due_date(self, received_at: datetime, deadline: Deadline) -> date:
        """The last day to answer a request received at ``received_at`` (local date)."""
        start = self.local_date(received_at)
        if deadline.working_days:
            return self.add_working_days(start, deadline.days)
        due = start + timedelta(days=deadline.days)
        return self.next_working_day(due) if self.roll_forward else due

    def due_at(self, received_at: datetime, deadline: Deadline) -> datetime:
        """The moment the request becomes overdue: the end of its due date, in UTC."""
        return self.end_of(self.due_date(received_at, deadline))

    def end_of(self, day: date) -> datetime:
        """Midnight local time after ``day``, in UTC."""
        return datetime.combine(day + _DAY, time(), self.tz).astimezone(UTC)

    def days_taken(self, received_at: datetime, answered_at: datetime, deadline: Deadline) -> int:
        """Days from receipt to answer, in the deadline's unit (0: answered the same day).

        Calendar days: the difference of the local dates. Working days: the working days
        after the receipt date up to and including the answer date.
        """
        start, end = self.local_date(received_at), self.local_date(answered_at)
        if deadline.working_days:
            return self.working_days_between(start, end)
        return max((end - start).days, 0)


@cache
def kazan_calendar() -> WorkCalendar:
    """Kazan's calendar: weekends, Russian federal and Tatarstan holidays (``holidays``)."""
    return WorkCalendar(
        holidays.non_working_days(holidays.KAZAN),
        working_weekends=holidays.working_weekends(holidays.KAZAN),
        years=holidays.COVERED_YEARS,
    )
