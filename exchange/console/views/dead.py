"""Dead letters and quarantine per party, with the reason; replay for admins (confirmed,
CSRF-checked, audited) through the application's ``Replayer``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from aiohttp import web

from exchange.console import csrf
from exchange.console.auth import Role, Session
from exchange.console.context import CONSOLE, audit_admin, session_of
from exchange.console.queries import request_of
from exchange.console.render import Html, fill, link, page, table, when
from exchange.console.replay import REPLAYER
from exchange.exceptions import ReplayUnavailable, RoleForbidden
from exchange.ledger.event import AuditRecord, EventName

routes = web.RouteTableDef()
log = structlog.get_logger("exchange.console")
# A broker dead letter is what replay is for; a request dead in the store has its final
# answer, and its node refuses (already-final): offered all the same, the refusal says why.
_REPLAYABLE = (EventName.DEAD_LETTERED, EventName.BROKER_DEAD_LETTER)


@routes.get("/dead-letters")
async def dead_letters(request: web.Request) -> web.Response:
    """Every party's dead letters and quarantined deliveries, and the collector's findings."""
    session = session_of(request)
    session.require(Role.SUPPORT)
    console = request.app[CONSOLE]
    admin = session.role is Role.ADMIN
    parts: list[str] = []
    by_party = await console.queries.dead_letters()
    for party, records in by_party.items():
        parts.append(f"<h2>{party}</h2>")
        parts.append(
            table(
                ("at", "what", "reason", "request", "case", "digest", ""),
                (_row(r, admin) for r in records),
            )
        )
    if not by_party:
        parts.append("<p>No dead letters and nothing quarantined.</p>")
    findings = await console.central.findings()
    parts.append("<h2>Findings of the collector (refused batches, gaps, broken chains)</h2>")
    parts.append(
        table(
            ("found", "party", "seq", "kind", "detail"),
            (([when(f.found_at), f.party, f.seq, f.kind, f.detail], "") for f in findings),
        )
    )
    return page(session, "Dead letters and quarantine", Html("".join(parts)))


def _row(record: AuditRecord, admin: bool) -> tuple[list[object], str]:
    e = record.event
    if e.event is EventName.BROKER_DEAD_LETTER:
        reason = _broker_reason(e.detail)
    else:
        reason = str(e.detail.get("reason") or e.detail.get("code") or e.detail.get("error") or "")
    if not reason and e.event is EventName.DEAD_LETTERED:
        reason = "processing-failed after the retry limit"
    request_id = request_of(record)
    action: object = ""
    if admin and request_id and e.event in _REPLAYABLE:
        query = urlencode({"party": record.party, "message_id": request_id})
        action = link(f"/dead-letters/replay?{query}", "Replay…")
    case = link(f"/case/{quote(e.case_id, safe='')}", e.case_id) if e.case_id else ""
    shown = link(f"/case/{quote(request_id, safe='')}", request_id) if request_id else ""
    return [when(record.at), e.event.value, reason, shown, case, (e.digest or "")[:16],
            action], ""  # fmt: skip


def _broker_reason(detail: Mapping[str, Any]) -> str:
    """The broker's reason and count; for a letter that does not verify, why not."""
    said = f"broker: {detail.get('reason', 'unknown')}"
    if "count" in detail:
        said += f" ({detail['count']} deliveries)"
    if not detail.get("verified"):
        said += f"; does not verify ({detail.get('code', 'unknown')}): not replayable by id"
    return said


@routes.get("/dead-letters/replay")
async def confirm_replay(request: web.Request) -> web.Response:
    """The confirmation step before a replay (admins only)."""
    session = session_of(request)
    actor = _admin(session, request)
    party = request.query.get("party", "")
    message_id = request.query.get("message_id", "")
    if not party or not message_id:
        raise web.HTTPBadRequest(text="replay needs a party and a message id")
    body = fill(
        "replay_confirm.html",
        csrf=Html(csrf.field(session)),
        party=party,
        message_id=message_id,
        actor=actor,
    )
    return page(session, "Confirm replay", body)


@routes.post("/dead-letters/replay")
async def replay(request: web.Request) -> web.Response:
    """Send the replay command (admins only, after the confirmation step).

    Raises:
        RoleForbidden (role-forbidden), ReplayUnavailable (replay-unavailable).
    """
    session = session_of(request)
    actor = _admin(session, request)
    form = await request.post()
    party, message_id = str(form.get("party", "")), str(form.get("message_id", ""))
    if form.get("confirm") != "yes" or not party or not message_id:
        raise web.HTTPBadRequest(text="confirm the replay on its confirmation page first")
    replayer = request.app.get(REPLAYER)
    if replayer is None:
        audit_admin(actor, "replay", party=party, message_id=message_id, outcome="unavailable")
        raise ReplayUnavailable(
            "this console has no replayer configured: replay with `exchange dlq replay` on "
            "the party's host"
        )
    try:
        sent = await replayer.replay(party, message_id, actor)
    except Exception as exc:
        audit_admin(actor, "replay", party=party, message_id=message_id, outcome=repr(exc))
        raise
    audit_admin(actor, "replay", party=party, message_id=message_id, outcome="sent", sent=sent)
    return page(
        session,
        "Dead letters and quarantine",
        Html(f"<p>{link('/dead-letters', 'Back to the dead letters')}</p>"),
        flash=f"replay of {message_id} sent to {party}: {sent}",
    )


def _admin(session: Session, request: web.Request) -> str:
    """The admin's name, or a refusal that is logged with who tried."""
    try:
        return session.require(Role.ADMIN)
    except RoleForbidden:
        log.warning(
            "console.admin_refused",
            actor=session.user or "anonymous",
            path=request.path,
            address=request.remote,
        )
        raise
