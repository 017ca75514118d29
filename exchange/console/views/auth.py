"""Logging in and out."""

from __future__ import annotations

from aiohttp import web

from exchange.console import csrf
from exchange.console.auth import Session
from exchange.console.context import CONSOLE, SESSION, audit_admin, session_of
from exchange.console.render import Html, fill, page

routes = web.RouteTableDef()


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    """The login form (its CSRF token is the anonymous session's)."""
    session = session_of(request)
    if session.user is not None:
        raise web.HTTPSeeOther("/search")
    return page(session, "Log in", login_body(session))


def login_body(session: Session) -> Html:
    """The login form with the session's CSRF token (shown again after a failed login)."""
    return fill("login.html", csrf=Html(csrf.field(session)))


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    """Check the password (rate-limited); a new session on success.

    Raises:
        LoginFailed (login-failed), LoginThrottled (login-throttled): shown as the form again.
    """
    console = request.app[CONSOLE]
    form = await request.post()
    name, password = str(form.get("user", "")), str(form.get("password", ""))
    session = console.auth.log_in(session_of(request), name, password, request.remote or "")
    request[SESSION] = session
    audit_admin(name, "login", role=session.role.value if session.role else None)
    raise web.HTTPSeeOther("/search")


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    """End the session."""
    console = request.app[CONSOLE]
    session = session_of(request)
    console.sessions.end(session)
    request[SESSION] = console.sessions.new()
    raise web.HTTPSeeOther("/login")
