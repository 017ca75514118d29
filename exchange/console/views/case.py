"""A case (or message): who held it for how long against the deadline, its timeline across
departments with each record's verification, its evidence bundle, its envelopes, live
updates."""

from __future__ import annotations

import asyncio
import contextlib
import json
from html import escape
from urllib.parse import quote

from aiohttp import web

from exchange._clock import Clock
from exchange.console.auth import Role
from exchange.console.context import CONSOLE, LazyTrust, session_of
from exchange.console.queries import Hold
from exchange.console.render import Html, badge, duration, fill, link, page, table, when
from exchange.evidence.bundle import export_bundle
from exchange.exceptions import BundleInvalid, ExchangeError
from exchange.ledger.chain import record_hash
from exchange.ledger.event import AuditRecord
from exchange.signing import unseal

routes = web.RouteTableDef()
KEEPALIVE_SECONDS = 15.0


def deadline_text(hold: Hold) -> str:
    """``14 calendar days`` or ``5 working days``."""
    if hold.deadline is None:
        return "—"
    unit = "working" if hold.deadline.working_days else "calendar"
    return f"{hold.deadline.days} {unit} days"


@routes.get("/case/{ident}")
async def case_page(request: web.Request) -> web.Response:
    """The case page."""
    session = session_of(request)
    session.require(Role.SUPPORT)
    console = request.app[CONSOLE]
    ident = request.match_info["ident"]
    view = await console.queries.case(ident)
    if not view.timeline.steps:
        return page(
            session, f"Case {ident}", Html(""), status=404,
            flash=f"the audit log knows no message or case {ident!r}", flash_kind="error",
        )  # fmt: skip
    holds = table(
        ("department", "request", "service", "received", "answered", "held for", "deadline",
         "due", "status"),
        (_hold_row(h) for h in view.holds),
    )  # fmt: skip
    steps = table(
        ("at", "party", "event", "kind", "message", "verification", "envelope"),
        (_step_row(r, view.verdicts[(r.party, r.seq)]) for r in view.timeline.steps),
        body_id="timeline-body",
    )
    case_ids = [r.event.case_id for r in view.timeline.steps if r.event.case_id]
    live = quote(case_ids[0] if case_ids else ident, safe="")
    body = fill(
        "case.html", ident_url=quote(ident, safe=""), live_url=live, holds=holds, timeline=steps
    )
    return page(session, f"Case {ident}", body)


def _hold_row(hold: Hold) -> tuple[list[object], str]:
    status = badge("overdue", "overdue") if hold.overdue else badge("on time", "ok")
    wait = hold.wait
    answered = when(wait.answered_at) if wait.answered_at else "still open"
    cells: list[object] = [
        wait.party,
        link(f"/case/{quote(wait.request_id, safe='')}", wait.request_id),
        wait.service or "",
        when(wait.received_at),
        answered,
        duration(wait.seconds),
        deadline_text(hold),
        when(hold.due_at),
        status,
    ]
    return cells, "overdue" if hold.overdue else ""


def _step_row(record: AuditRecord, verdict: str) -> tuple[list[object], str]:
    e = record.event
    digest = e.digest
    envelope: object = link(f"/envelope/{digest}", digest[:16] + "…") if digest else ""
    check = badge(verdict, "ok" if verdict == "verified" else "bad")
    message = link(f"/case/{quote(e.message_id, safe='')}", e.message_id) if e.message_id else ""
    return [when(record.at), record.party, e.event.value, e.kind or "", message, check,
            envelope], ""  # fmt: skip


@routes.get("/case/{ident}/evidence.json")
async def evidence(request: web.Request) -> web.Response:
    """The evidence bundle: the audit records and chain proofs (and envelopes the log has)."""
    session_of(request).require(Role.SUPPORT)
    console = request.app[CONSOLE]
    ident = request.match_info["ident"]
    try:
        bundle = await export_bundle(console.central, ident, {}, console.clock.now())
    except BundleInvalid as exc:
        raise web.HTTPNotFound(text=exc.message) from None
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in ident)
    return web.Response(
        body=json.dumps(bundle, indent=1, ensure_ascii=False).encode(),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="evidence-{name}.json"'},
    )


@routes.get("/envelope/{digest}")
async def envelope(request: web.Request) -> web.Response:
    """An envelope as it was signed, when the collector archived its wire bytes."""
    session = session_of(request)
    session.require(Role.SUPPORT)
    console = request.app[CONSOLE]
    digest = request.match_info["digest"]
    wire = await console.central.envelope(digest)
    if wire is None:
        body = Html(
            f"<p>Digest only: <code>{digest}</code>. The collector keeps no wire bytes of this "
            "envelope (its service archives digests only, or the archive is not enabled); the "
            "signed audit records still prove what was sent.</p>"
        ) if all(c in "0123456789abcdef" for c in digest) else Html("")  # fmt: skip
        return page(session, "Envelope", body)
    text = wire.decode("utf-8", errors="replace")
    body = Html(
        f"<p>Digest <code>{digest}</code>, {len(wire)} bytes as signed.</p>"
        f"<p>{await _verification(console.trust, console.clock, wire)}</p>"
        f'<pre class="wire">{escape(text)}</pre>'
    )
    return page(session, "Envelope", body)


async def _verification(trust: LazyTrust, clock: Clock, wire: bytes) -> str:
    """The envelope checked again now (signature, profile, certificate and CRL), as HTML."""
    try:
        verified = await asyncio.to_thread(unseal, wire, trust.get(), clock=clock)
    except ExchangeError as exc:
        return f"{badge('not verified', 'bad')} {escape(exc.code)}: {escape(exc.message)}"
    signer = verified.signer.party
    return f"{badge('verified', 'ok')} signed by {escape(signer)}, checked now"


@routes.get("/live/{case_id}")
async def live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each new audit record of the case, as the collector stores it."""
    session_of(request).require(Role.SUPPORT)
    console = request.app[CONSOLE]
    case_id = request.match_info["case_id"]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    with console.hub.subscribe(case_id) as queue, contextlib.suppress(ConnectionResetError):
        # The page went away: the write fails and the subscription ends with this block.
        await response.write(b": following\n\n")
        while True:
            try:
                record = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if record is None:  # shutting down
                break
            step = {
                "at": when(record.at),
                "party": record.party,
                "event": record.event.event.value,
                "kind": record.event.kind,
                "message_id": record.event.message_id,
                # The feed re-verified the batch's signature; the hash is checked here.
                "verdict": "verified" if record_hash(record) == record.hash else "hash mismatch",
            }
            await response.write(f"event: record\ndata: {json.dumps(step)}\n\n".encode())
    return response
