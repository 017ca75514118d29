"""The deadline board: open requests by due date per department and service, overdue first;
turnaround per service against its regulated deadline as a server-side SVG chart."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from exchange.catalog import Deadline
from exchange.console.auth import Role
from exchange.console.context import CONSOLE, session_of
from exchange.console.queries import OpenItem, TurnRow
from exchange.console.render import Html, badge, link, page, table, when
from exchange.console.svg import Bar, turnaround_chart

routes = web.RouteTableDef()


def _unit(deadline: Deadline) -> str:
    return "working days" if deadline.working_days else "calendar days"


@routes.get("/deadlines")
async def deadlines(request: web.Request) -> web.Response:
    """The board, as of the console's clock."""
    session = session_of(request)
    session.require(Role.SUPPORT)
    board = await request.app[CONSOLE].queries.board()
    overdue = sum(item.overdue for item in board.open)
    summary = Html(
        f"<p>As of {when(board.now)}: {len(board.open)} open request(s), "
        f"{badge(f'{overdue} overdue', 'overdue' if overdue else 'ok')}.</p>"
    )
    open_table = table(
        ("status", "department", "service", "due", "received", "case", "request"),
        (_open_row(item) for item in board.open),
    )
    rows = [r for r in board.turnaround if r.days or r.open]
    chart = Html(
        turnaround_chart(
            [
                Bar(f"{r.service} ({r.party})", r.median, r.deadline.days, _unit(r.deadline))
                for r in rows
            ],
            "Turnaround per service against its regulated deadline",
        )
    )
    turn_table = table(
        ("department", "service", "deadline", "answered", "median days", "open", "overdue"),
        (_turn_row(r) for r in board.turnaround),
    )
    body = Html(
        summary
        + "<h2>Open requests (overdue first, then by due date)</h2>"
        + open_table
        + "<h2>Turnaround</h2>"
        + chart
        + turn_table
    )
    return page(session, "Deadline board", body)


def _open_row(item: OpenItem) -> tuple[list[object], str]:
    status = badge("overdue", "overdue") if item.overdue else badge("open", "ok")
    case = link(f"/case/{quote(item.case_id, safe='')}", item.case_id) if item.case_id else ""
    request = link(f"/case/{quote(item.message_id, safe='')}", item.message_id)
    cells: list[object] = [
        status, item.party, item.service, when(item.due_at), when(item.received_at), case, request
    ]  # fmt: skip
    return cells, "overdue" if item.overdue else ""


def _turn_row(row: TurnRow) -> tuple[list[object], str]:
    median = "—" if row.median is None else f"{row.median:g}"
    deadline = f"{row.deadline.days} {_unit(row.deadline)}"
    cells: list[object] = [
        row.party, row.service, deadline, len(row.days), median, row.open, row.overdue
    ]  # fmt: skip
    return cells, "overdue" if row.overdue else ""
