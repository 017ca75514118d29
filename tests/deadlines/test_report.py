"""The deadline report over stores that hold five simulated weeks, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from exchange._clock import FrozenClock
from exchange.catalog import Catalog, Deadline
from exchange.deadlines import SlaReport, Turnaround, percentile, sla_report
from exchange.node.store import InboxState, PostgresStore, SQLiteStore, Store
from tests.postgres import DSN

from ._weeks import AS_OF, IMPROVEMENT, URBAN_PERMITS, write

REPO = Path(__file__).resolve().parents[2]
StoreMaker = Callable[[str], Store]


def city() -> Catalog:
    """The city's catalog."""
    return Catalog.load(REPO / "exchange/data/catalog.toml", REPO / "exchange/data/schemas")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock, pg_prefix: str
) -> StoreMaker:
    """Unopened stores of this test, one per party, on each backend."""
    run = uuid4().hex[:6]

    def make(party: str) -> Store:
        if request.param == "sqlite":
            return SQLiteStore(tmp_path / f"{party}.db", party, clock)
        schema = f"{pg_prefix}_{run}_{party.replace('-', '_')}"
        return PostgresStore(DSN, party, clock, schema=schema)

    return make


@pytest.fixture
async def stores(make_store: StoreMaker) -> AsyncIterator[list[Store]]:
    """The open stores of improvement and urban-permits, holding the five weeks."""
    opened = [make_store("improvement"), make_store("urban-permits")]
    for store in opened:
        await store.open()
    await write(opened[0], IMPROVEMENT)
    await write(opened[1], URBAN_PERMITS)
    yield opened
    for store in opened:
        await store.close()


def row(report: SlaReport, service: str) -> Turnaround:
    """The turnaround row of a service."""
    return next(r for r in report.turnaround if r.service == service)


class TestAsOfToday:
    """The report as of Wednesday 4 March 2026, 13:00 Kazan time."""

    @pytest.fixture
    async def report(self, stores: list[Store]) -> SlaReport:
        """The report over both stores."""
        return await sla_report(stores, city(), FrozenClock(AS_OF))

    def test_open_requests_overdue_first_then_by_due_date(self, report: SlaReport) -> None:
        """Open requests run from the most overdue to the latest due; ties by receipt time."""
        assert [r.message_id for r in report.open_requests] == ["t6", "u1", "s2", "t8", "t7"]

    def test_due_dates_and_days_left(self, report: SlaReport) -> None:
        """Each open request has its due date, days left, and an overdue flag."""
        got = {
            r.message_id: (r.party, r.due_date, r.days_left, r.overdue)
            for r in report.open_requests
        }
        assert got == {
            "t6": ("improvement", date(2026, 2, 24), -8, True),
            "u1": ("urban-permits", date(2026, 3, 3), -1, True),
            "s2": ("improvement", date(2026, 3, 4), 0, False),
            "t8": ("improvement", date(2026, 3, 16), 12, False),
            "t7": ("improvement", date(2026, 3, 16), 12, False),
        }

    def test_open_request_details(self, report: SlaReport) -> None:
        """An open request carries its sender, case, state now, and when it becomes overdue."""
        t8 = next(r for r in report.open_requests if r.message_id == "t8")
        assert (t8.sender, t8.case_id) == ("single-center", "case-t8")
        assert t8.state is InboxState.ANSWERED  # answered since: the store's state now
        assert t8.deadline == Deadline(days=14, working_days=False)
        assert t8.due_at == datetime(2026, 3, 16, 21, tzinfo=UTC)

    def test_tree_felling_turnaround(self, report: SlaReport) -> None:
        """Days 0, 10, 14, 15, 17: median 14, p90 16.2, three of five on time."""
        trees = row(report, "tree-felling-permit")
        assert (trees.answered, trees.on_time, trees.on_time_share) == (5, 3, 0.6)
        assert trees.median_days == 14
        assert trees.p90_days == pytest.approx(16.2)
        assert (trees.open, trees.overdue) == (3, 1)

    def test_working_day_turnaround(self, report: SlaReport) -> None:
        """Stormwater conditions: one answer after 9 working days, on time; one due today."""
        storm = row(report, "stormwater-conditions")
        assert (storm.answered, storm.on_time, storm.median_days, storm.p90_days) == (1, 1, 9, 9)
        assert (storm.open, storm.overdue) == (1, 0)
        assert storm.deadline == Deadline(days=14, working_days=True)

    def test_every_provided_service_has_a_row(self, report: SlaReport) -> None:
        """Services with nothing answered get a row without figures, in catalog order."""
        assert [(r.party, r.service) for r in report.turnaround] == [
            ("improvement", "tree-felling-permit"),
            ("improvement", "stormwater-conditions"),
            ("urban-permits", "excavation-permit"),
            ("urban-permits", "urban-plan-extract"),
        ]
        excavation = row(report, "excavation-permit")
        assert (excavation.answered, excavation.median_days, excavation.on_time_share) == (
            0,
            None,
            None,
        )
        assert (excavation.open, excavation.overdue) == (1, 1)

    def test_unknown_service_is_skipped(self, report: SlaReport) -> None:
        """A request for a service the catalog lacks is counted as skipped, nowhere else."""
        assert report.skipped == 1
        assert "x1" not in {r.message_id for r in report.open_requests}

    def test_json(self, report: SlaReport) -> None:
        """The JSON form carries the same figures."""
        data = report.to_json()
        assert data["as_of"] == "2026-03-04T10:00:00+00:00"
        assert data["open"][0]["message_id"] == "t6"
        assert data["open"][0]["due_date"] == "2026-02-24"
        assert data["open"][0]["overdue"] is True
        assert data["turnaround"][0]["on_time_share"] == 0.6
        assert data["turnaround"][0]["deadline"] == {"days": 14, "working_days": False}


async def test_earlier_as_of(stores: list[Store]) -> None:
    """As of 10 February only t3 was answered; the rest was open, none overdue yet."""
    report = await sla_report(stores[:1], city(), FrozenClock(datetime(2026, 2, 10, 9, tzinfo=UTC)))
    assert [r.message_id for r in report.open_requests] == ["t1", "t2", "t4", "s1", "t5", "t6"]
    assert not any(r.overdue for r in report.open_requests)
    trees = row(report, "tree-felling-permit")
    assert (trees.answered, trees.on_time, trees.median_days) == (1, 1, 0)


async def test_report_is_read_only(stores: list[Store]) -> None:
    """Making the report changes nothing in the store."""
    before = [await stores[0].count_inbox(state) for state in InboxState]
    audit = len(await stores[0].audit())
    await sla_report(stores, city(), FrozenClock(AS_OF))
    assert [await stores[0].count_inbox(state) for state in InboxState] == before
    assert len(await stores[0].audit()) == audit


class TestPercentile:
    """Linear interpolation between ranks."""

    @pytest.mark.parametrize(
        ("values", "fraction", "expected"),
        [
            ([5.0], 0.9, 5.0),
            ([1.0, 2.0], 0.5, 1.5),
            ([0.0, 10.0, 14.0, 15.0, 17.0], 0.5, 14.0),
            ([0.0, 10.0, 14.0, 15.0, 17.0], 0.9, 16.2),
            ([float(d) for d in range(1, 11)], 0.9, 9.1),
            ([3.0, 1.0, 2.0], 1.0, 3.0),
        ],
    )
    def test_known_answers(self, values: list[float], fraction: float, expected: float) -> None:
        """Known quantiles."""
        assert percentile(values, fraction) == pytest.approx(expected)

    def test_empty(self) -> None:
        """No values, no percentile."""
        with pytest.raises(ValueError, match="no values"):
            percentile([], 0.5)
