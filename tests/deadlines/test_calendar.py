"""Due dates in calendar and working days across weekends and Kazan's holidays: known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from exchange.catalog import Deadline
from exchange.deadlines import KAZAN_TZ, WorkCalendar, kazan_calendar
from exchange.workdays import holidays as data

KAZAN = kazan_calendar()
FEDERAL = WorkCalendar(data.non_working_days([data.FEDERAL]), years=data.COVERED_YEARS)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC time (Kazan is three hours ahead)."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def calendar_days(days: int) -> Deadline:
    """A deadline in calendar days."""
    return Deadline(days=days, working_days=False)


def working_days(days: int) -> Deadline:
    """A deadline in working days."""
    return Deadline(days=days, working_days=True)


class TestWorkingDays:
    """Which days are worked."""

    @pytest.mark.parametrize(
        ("calendar", "year", "count"),
        [
            (FEDERAL, 2026, 247),  # the official federal production calendar for 2026
            (KAZAN, 2026, 244),  # less Uraza Bayram, Kurban Bayram, Constitution Day of RT
            (FEDERAL, 2027, 249),  # laws only: 247 once the decree moves 2 and 3 January
            (KAZAN, 2027, 248),  # plus Republic Day (Monday 30 August)
        ],
    )
    def test_working_days_per_year(self, calendar: WorkCalendar, year: int, count: int) -> None:
        """Each year has the number of working days of its production calendar."""
        assert calendar.working_days_between(date(year - 1, 12, 31), date(year, 12, 31)) == count

    @pytest.mark.parametrize(
        ("day", "working"),
        [
            (date(2026, 1, 9), False),  # the day off moved from 3 January
            (date(2026, 1, 12), True),
            (date(2026, 3, 9), False),  # 8 March fell on a Sunday
            (date(2026, 3, 20), False),  # Uraza Bayram in Tatarstan
            (date(2026, 5, 11), False),  # 9 May fell on a Saturday
            (date(2026, 5, 27), False),  # Kurban Bayram in Tatarstan
            (date(2026, 11, 6), False),  # Constitution Day of Tatarstan
            (date(2026, 12, 31), False),  # the day off moved from 4 January
            (date(2026, 8, 31), True),  # Republic Day on a Sunday is not moved
            (date(2027, 6, 14), False),  # 12 June 2027 falls on a Saturday
            (date(2026, 2, 14), False),  # a Saturday
        ],
    )
    def test_kazan_days(self, day: date, working: bool) -> None:
        """Federal transfers and Tatarstan's holidays are days off in Kazan."""
        assert KAZAN.is_working_day(day) is working

    def test_tatarstan_holidays_are_federal_working_days(self) -> None:
        """Uraza Bayram is a working day outside Tatarstan."""
        assert FEDERAL.is_working_day(date(2026, 3, 20))

    def test_working_weekend(self) -> None:
        """A Saturday a decree made a working day counts."""
        calendar = WorkCalendar(working_weekends=[date(2026, 2, 14)])
        assert calendar.is_working_day(date(2026, 2, 14))
        assert calendar.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)

    def test_coverage(self) -> None:
        """The shipped lists cover 2026 and 2027; other years count weekends only."""
        assert KAZAN.covers(date(2026, 6, 1))
        assert KAZAN.covers(date(2027, 1, 1))
        assert not KAZAN.covers(date(2028, 1, 3))
        assert KAZAN.is_working_day(date(2028, 1, 3))

    def test_data_is_tidy(self) -> None:
        """Holidays are in date order, unique per region, and within the covered years."""
        days = [(h.day, h.region) for h in data.HOLIDAYS]
        assert days == sorted(days)
        assert len(set(days)) == len(days)
        assert {h.day.year for h in data.HOLIDAYS} <= set(data.COVERED_YEARS)
        assert {h.region for h in data.HOLIDAYS} == set(data.KAZAN)


class TestDueDates:
    """Due dates from the receipt time and the deadline."""

    @pytest.mark.parametrize(
        ("received", "deadline", "due"),
        [
            # calendar days: receipt date + N, off a non-working day to the next working day
            (utc(2026, 1, 15, 9), calendar_days(14), date(2026, 1, 29)),
            (utc(2026, 1, 20, 9), calendar_days(4), date(2026, 1, 26)),  # Saturday -> Monday
            (utc(2026, 2, 9, 9), calendar_days(14), date(2026, 2, 24)),  # 23 Feb holiday
            (utc(2026, 1, 17, 9), calendar_days(1), date(2026, 1, 19)),  # received on Saturday
            (utc(2026, 12, 20, 9), calendar_days(14), date(2027, 1, 11)),  # over New Year
            # working days: the N-th working day after the receipt date
            (utc(2026, 1, 15, 9), working_days(5), date(2026, 1, 22)),
            (utc(2026, 1, 17, 9), working_days(1), date(2026, 1, 19)),  # received on Saturday
            (utc(2026, 12, 25, 9), working_days(5), date(2027, 1, 12)),  # over New Year
            (utc(2026, 3, 19, 9), working_days(1), date(2026, 3, 23)),  # over Uraza Bayram
            (utc(2026, 5, 6, 9), working_days(20), date(2026, 6, 5)),  # 11 May, Kurban Bayram
            (utc(2026, 2, 16, 9), working_days(10), date(2026, 3, 3)),  # 23 February
        ],
    )
    def test_kazan(self, received: datetime, deadline: Deadline, due: date) -> None:
        """Known answers in Kazan's calendar."""
        assert KAZAN.due_date(received, deadline) == due

    def test_federal_calendar_differs_on_tatarstan_days(self) -> None:
        """Without Tatarstan's holidays Uraza Bayram and Kurban Bayram are counted."""
        assert FEDERAL.due_date(utc(2026, 3, 19, 9), working_days(1)) == date(2026, 3, 20)
        assert FEDERAL.due_date(utc(2026, 5, 6, 9), working_days(20)) == date(2026, 6, 4)

    def test_without_roll_forward(self) -> None:
        """With roll_forward off, a calendar-day due date may fall on a weekend."""
        plain = WorkCalendar(roll_forward=False)
        assert plain.due_date(utc(2026, 1, 20, 9), calendar_days(4)) == date(2026, 1, 24)

    def test_receipt_date_is_kazan_date(self) -> None:
        """22:30 UTC on Friday is already Saturday in Kazan: counting starts from Saturday."""
        friday_night = utc(2026, 1, 16, 22, 30)
        assert KAZAN.local_date(friday_night) == date(2026, 1, 17)
        assert KAZAN.due_date(friday_night, calendar_days(1)) == date(2026, 1, 19)
        assert KAZAN.due_date(utc(2026, 1, 16, 20, 59), calendar_days(1)) == date(2026, 1, 19)
        assert KAZAN.due_date(utc(2026, 1, 16, 20, 59), working_days(1)) == date(2026, 1, 19)
        assert KAZAN.due_date(friday_night, working_days(2)) == date(2026, 1, 20)

    def test_due_at_is_kazan_midnight(self) -> None:
        """A request becomes overdue at midnight Kazan time after its due date."""
        due_at = KAZAN.due_at(utc(2026, 1, 15, 9), calendar_days(14))
        assert due_at == utc(2026, 1, 29, 21)
        assert due_at.astimezone(KAZAN_TZ).hour == 0

    def test_naive_time_is_refused(self) -> None:
        """A time without a zone cannot be placed on a date."""
        with pytest.raises(ValueError, match="no time zone"):
            KAZAN.due_date(datetime(2026, 1, 15, 9), calendar_days(1))

    def test_negative_count_is_refused(self) -> None:
        """Counting working days backwards is not supported."""
        with pytest.raises(ValueError, match="negative"):
            KAZAN.add_working_days(date(2026, 1, 15), -1)


class TestDaysTaken:
    """Days from receipt to answer, in the deadline's unit."""

    def test_same_day(self) -> None:
        """An answer on the day of receipt took 0 days."""
        received, answered = utc(2026, 1, 15, 6), utc(2026, 1, 15, 20)
        assert KAZAN.days_taken(received, answered, calendar_days(14)) == 0
        assert KAZAN.days_taken(received, answered, working_days(5)) == 0

    def test_over_a_weekend(self) -> None:
        """Friday to Monday is 3 calendar days but 1 working day."""
        received, answered = utc(2026, 1, 16, 9), utc(2026, 1, 19, 9)
        assert KAZAN.days_taken(received, answered, calendar_days(14)) == 3
        assert KAZAN.days_taken(received, answered, working_days(5)) == 1

    def test_over_new_year(self) -> None:
        """30 December to 12 January 2027 holds two working days in Kazan."""
        received, answered = utc(2026, 12, 30, 9), utc(2027, 1, 12, 9)
        assert KAZAN.days_taken(received, answered, working_days(5)) == 2
        assert KAZAN.days_taken(received, answered, calendar_days(14)) == 13

    def test_answer_after_kazan_midnight(self) -> None:
        """An answer at 21:30 UTC is dated the next day in Kazan."""
        received, answered = utc(2026, 2, 6, 20, 30), utc(2026, 2, 20, 21, 30)
        assert KAZAN.days_taken(received, answered, calendar_days(14)) == 15
