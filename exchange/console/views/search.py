"""Search the central log by message id, case id, party, service, event and time range."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from aiohttp import web

from exchange.audit.central import RecordQuery
from exchange.console.auth import Role
from exchange.console.context import CONSOLE, session_of
from exchange.console.render import Html, fill, link, options, page, table, when
from exchange.ledger.event import AuditRecord, EventName

routes = web.RouteTableDef()
_FIELDS = ("message_id", "case_id", "party", "service", "event", "since", "until")


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """The console starts at search."""
    raise web.HTTPSeeOther("/search")


def _time(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f"{name}: give a date and time like 2026-12-06T09:30"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@routes.get("/search")
async def search(request: web.Request) -> web.Response:
    """The search form and, when anything is asked, one page of matching records."""
    session = session_of(request)
    session.require(Role.SUPPORT)
    console = request.app[CONSOLE]
    q = {name: request.query.get(name, "").strip() for name in _FIELDS}
    results = Html("")
    if any(q.values()):
        query = RecordQuery(
            message_id=q["message_id"] or None,
            case_id=q["case_id"] or None,
            party=q["party"] or None,
            service=q["service"] or None,
            events=(q["event"],) if q["event"] else (),
            since=_time(q["since"], "From"),
            until=_time(q["until"], "To"),
        )
        try:
            number = max(int(request.query.get("page", "1")), 1)
        except ValueError:
            number = 1
        found = await console.queries.search(query, number, console.settings.page_size)
        results = Html(
            table(
                ("at", "party", "event", "kind", "service", "case", "message", "answers"),
                (_row(r) for r in found.records),
            )
            + _pager(q, found.page, found.has_more)
        )
    parties = [p.id for p in console.catalog.identities]
    services = sorted({s.code for s in console.catalog.services})
    body = fill(
        "search.html",
        message_id=q["message_id"],
        case_id=q["case_id"],
        parties=options(parties, q["party"]),
        services=options(services, q["service"]),
        events=options([e.value for e in EventName], q["event"]),
        since=q["since"],
        until=q["until"],
        results=results,
    )
    return page(session, "Search the audit log", body)


def _row(record: AuditRecord) -> tuple[list[object], str]:
    e = record.event
    case = link(f"/case/{quote(e.case_id, safe='')}", e.case_id) if e.case_id else ""
    message = link(f"/case/{quote(e.message_id, safe='')}", e.message_id) if e.message_id else ""
    answers = e.correlation_id or ""
    return [when(record.at), record.party, e.event.value, e.kind or "", e.service or "", case,
            message, answers], ""  # fmt: skip


def _pager(q: dict[str, str], number: int, has_more: bool) -> Html:
    parts = []
    if number > 1:
        parts.append(link("/search?" + urlencode({**q, "page": number - 1}), "« newer"))
    parts.append(Html(f"<span>page {number}</span>"))
    if has_more:
        parts.append(link("/search?" + urlencode({**q, "page": number + 1}), "older »"))
    return Html('<div class="pager">' + "".join(parts) + "</div>")
