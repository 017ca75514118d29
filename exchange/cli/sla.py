"""``exchange sla``: providers' open requests by due date, and turnaround per service."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from exchange._clock import SYSTEM_CLOCK, Clock, FrozenClock
from exchange.catalog import Catalog
from exchange.cli._output import console, load_settings, print_json, user_errors
from exchange.cli.services import deadline_text
from exchange.config import Settings
from exchange.deadlines import SlaReport, WorkCalendar, kazan_calendar, sla_report
from exchange.exceptions import StoreError, StoreUnavailable, UnknownParty
from exchange.node.factory import open_store
from exchange.node.store.base import Store
from exchange.node.store.postgres import PostgresStore
from exchange.node.store.sqlite import SQLiteStore

_NEAR_DAYS = 2  # due within this many days: shown in yellow


def sla(
    parties: Annotated[
        list[str] | None,
        typer.Argument(help="Providing parties (default: every party with a store)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Report as of this ISO date-time (Kazan time unless it has an offset).",
        ),
    ] = None,
) -> None:
    """Open requests by due date (overdue first) and turnaround per service vs its deadline."""
    calendar = kazan_calendar()
    clock = _clock(as_of, calendar)
    current = load_settings()
    with user_errors():
        catalog = Catalog.load(current.catalog, current.schemas_dir)
        report = asyncio.run(_report(parties or [], current, catalog, clock, calendar))
    if as_json:
        print_json(report.to_json())
        return
    _print(report, calendar)


def _clock(as_of: str | None, calendar: WorkCalendar) -> Clock:
    if as_of is None:
        return SYSTEM_CLOCK
    try:
        moment = datetime.fromisoformat(as_of)
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not an ISO date-time, e.g. 2026-03-01T09:00", param_hint="--as-of"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=calendar.tz)
    return FrozenClock(moment)


async def _report(
    parties: list[str],
    settings: Settings,
    catalog: Catalog,
    clock: Clock,
    calendar: WorkCalendar,
) -> SlaReport:
    known = [party.id for party in catalog.parties]
    for party in parties:
        if party not in known:
            raise UnknownParty(f"{party} is not a party of the catalog {settings.catalog}")
    stores: list[Store] = []
    for party in parties or known:
        store = open_store(party, settings, clock)
        if await _exists(store):
            stores.append(store)
        elif parties:
            raise StoreError(f"{party} has no store yet: {_where(store)}", party=party)
    opened: list[Store] = []
    try:
        for store in stores:
            await store.open()
            opened.append(store)
        return await sla_report(opened, catalog, clock, calendar=calendar)
    finally:
        for store in opened:
            await store.close()


async def _exists(store: Store) -> bool:
    """Whether the party's store was ever created (opening one would create it)."""
    if isinstance(store, SQLiteStore):
        return store.path.is_file()
    if isinstance(store, PostgresStore):
        import asyncpg

        try:
            conn = await asyncpg.connect(store.dsn, timeout=10)
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot reach PostgreSQL for {store.party}: {exc}", schema=store.schema
            ) from None
        try:
            query = "SELECT 1 FROM pg_namespace WHERE nspname = $1"
            return bool(await conn.fetchval(query, store.schema))
        finally:
            await conn.close()
    return True


def _where(store: Store) -> str:
    if isinstance(store, SQLiteStore):
        return f"no file {store.path}"
    if isinstance(store, PostgresStore):
        return f"no schema {store.schema}"
    return "not found"


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _print(report: SlaReport, calendar: WorkCalendar) -> None:
    out = console(min_width=160)
    local = report.as_of.astimezone(calendar.tz)
    if not calendar.covers(local.date()):
        out.print(
            f"[yellow]note: no holiday list for {local.year}; counting weekends only[/yellow]"
        )
    table = Table(title=f"Open requests as of {local:%Y-%m-%d %H:%M} (Kazan time)")
    columns = ("party", "service", "request", "sender", "case", "received", "due", "left")
    for column in columns:
        table.add_column(column, justify="right" if column == "left" else "left")
    table.add_column("waiting on")  # what a parked request's handler waits for
    for request in report.open_requests:
        style = "red" if request.overdue else "yellow" if request.days_left <= _NEAR_DAYS else ""
        left = f"{-request.days_left}d overdue" if request.overdue else f"{request.days_left}d"
        table.add_row(
            request.party,
            request.service,
            request.message_id,
            request.sender,
            escape(request.case_id or ""),
            f"{request.received_at.astimezone(calendar.tz):%Y-%m-%d %H:%M}",
            request.due_date.isoformat(),
            left,
            request.waiting_on or "",
            style=style,
        )
    out.print(table)
    turnaround = Table(title="Turnaround per service (days in the deadline's unit)")
    for column in ("party", "service", "deadline", "answered", "median", "p90", "on time"):
        turnaround.add_column(column)
    turnaround.add_column("open")
    turnaround.add_column("overdue")
    for row in report.turnaround:
        share = row.on_time_share
        late = share is not None and share < 1.0
        turnaround.add_row(
            row.party,
            row.service,
            deadline_text(row.deadline),
            str(row.answered),
            _days(row.median_days),
            _days(row.p90_days),
            "—" if share is None else f"{share:.0%}",
            str(row.open),
            f"[red]{row.overdue}[/red]" if row.overdue else "0",
            style="yellow" if late else "",
        )
    out.print(turnaround)
    if report.skipped:
        out.print(f"{report.skipped} request(s) left out: service not in the catalog or no answer")
