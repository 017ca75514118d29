"""The console's aiohttp application: sessions, CSRF and security headers around every view.

``create_app`` takes its parts as objects (the central log, catalog, clock, users file, an
optional live feed and replayer), so tests and ``exchange console serve`` compose it the same
way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from exchange._clock import Clock
from exchange.audit.central import CentralStore
from exchange.catalog import Catalog
from exchange.catalog.asyncapi import asyncapi_document
from exchange.console import csrf
from exchange.console.auth import Authenticator, LoginLimiter, Session, Sessions, UsersFile
from exchange.console.config import ConsoleSettings
from exchange.console.context import (
    CONSOLE,
    SESSION,
    SESSION_COOKIE,
    Console,
    LazyTrust,
    log,
    session_of,
)
from exchange.console.live import LiveHub, RecordFeed
from exchange.console.queries import ConsoleQueries
from exchange.console.render import Html, asset, page
from exchange.console.replay import REPLAYER, Replayer
from exchange.console.views import add_routes
from exchange.console.views.probe import PUBLIC_PATHS
from exchange.exceptions import (
    ConsoleError,
    CsrfInvalid,
    LoginFailed,
    LoginThrottled,
    ReplayUnavailable,
    RoleForbidden,
)
from exchange.observe.health import Check, Readiness, trust_check
from exchange.transport.names import BusNames

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_STATUS: dict[type[ConsoleError], int] = {
    CsrfInvalid: 403,
    RoleForbidden: 403,
    LoginFailed: 401,
    LoginThrottled: 429,
    ReplayUnavailable: 503,
}
_HEADERS = {
    # Scripts and styles from the console only (live.js, console.css); no inline script.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(
    central: CentralStore,
    catalog: Catalog,
    certs_dir: Path,
    clock: Clock,
    settings: ConsoleSettings,
    *,
    feed: RecordFeed | None = None,
    replayer: Replayer | None = None,
    names: BusNames | None = None,
    checks: Mapping[str, Check] | None = None,
) -> web.Application:
    """The console application; ``central`` must be open (the caller owns it).

    ``names`` is the bus the AsyncAPI document describes; ``checks`` are readiness checks
    beside the console's own (the central log answers, trust store and CRL current).
    """
    sessions = Sessions(clock, timedelta(hours=settings.session_hours))
    trust = LazyTrust(certs_dir)
    limiter = LoginLimiter(
        clock, settings.login_attempts, timedelta(seconds=settings.login_window_seconds)
    )
    console = Console(
        settings=settings,
        central=central,
        catalog=catalog,
        certs_dir=certs_dir,
        clock=clock,
        queries=ConsoleQueries(central, catalog, clock),
        auth=Authenticator(UsersFile(settings.users), sessions, limiter),
        sessions=sessions,
        hub=LiveHub(),
        readiness=Readiness({**_own_checks(central, trust, clock), **(checks or {})}),
        asyncapi=asyncapi_document(catalog, names),
        trust=trust,
    )
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[CONSOLE] = console
    if replayer is not None:
        app[REPLAYER] = replayer
    add_routes(app)
    app.router.add_get("/static/{name}", _static)
    if feed is not None:
        app.on_startup.append(_start_live(feed))
    app.on_shutdown.append(_end_streams)
    app.on_cleanup.append(_stop_live)
    return app


def _own_checks(central: CentralStore, trust: LazyTrust, clock: Clock) -> dict[str, Check]:
    async def central_log() -> None:
        await central.parties()  # a read: the console never writes the central log

    async def current() -> None:
        await trust_check(trust.get(), clock)()

    return {"central-log": central_log, "trust": current}


def _start_live(feed: RecordFeed) -> Callable[[web.Application], Awaitable[None]]:
    async def start(app: web.Application) -> None:
        try:
            await app[CONSOLE].hub.start(feed)
        except ConsoleError:
            raise
        except Exception as exc:  # the console serves the log without live updates
            log.warning("console.live_unavailable", error=repr(exc))

    return start


async def _end_streams(app: web.Application) -> None:
    app[CONSOLE].hub.end_streams()


async def _stop_live(app: web.Application) -> None:
    await app[CONSOLE].hub.stop()


_ASSETS = {"console.css": "text/css", "live.js": "text/javascript"}


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _ASSETS:
        raise web.HTTPNotFound()
    return web.Response(body=asset(name), content_type=_ASSETS[name])


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A session for every request; CSRF on every POST; errors as pages; safe headers.

    Probes and the AsyncAPI document go without: a session per probe would pile up.
    """
    console = request.app[CONSOLE]
    if request.path in PUBLIC_PATHS:
        public = await handler(request)
        public.headers.update(_HEADERS)
        return public
    known = console.sessions.get(request.cookies.get(SESSION_COOKIE))
    request[SESSION] = known or console.sessions.new()
    response: web.StreamResponse
    try:
        if request.method == "POST":
            await csrf.check(request, known)
        response = await handler(request)
    except web.HTTPMove as redirect:  # raised by views; answered as a plain response
        response = web.Response(
            status=redirect.status, headers={"Location": str(redirect.location)}
        )
    except web.HTTPClientError as refused:
        response = web.Response(status=refused.status, text=refused.text or refused.reason)
    except RoleForbidden as exc:
        if request.method == "GET" and session_of(request).user is None:
            response = web.Response(status=303, headers={"Location": "/login"})
        else:
            response = _error(session_of(request), exc)
    except ConsoleError as exc:
        response = _error(session_of(request), exc)
    if response.prepared:  # a stream (SSE): headers are gone already
        return response
    session: Session = request[SESSION]
    if session is not known:
        response.set_cookie(
            SESSION_COOKIE,
            session.id,
            httponly=True,
            secure=console.settings.secure_cookies,
            samesite="Strict",
            path="/",
            max_age=int(console.settings.session_hours * 3600),
        )
    response.headers.update(_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error(session: Session, exc: ConsoleError) -> web.Response:
    status = _STATUS.get(type(exc), 400)
    if isinstance(exc, LoginFailed | LoginThrottled):
        from exchange.console.views.auth import login_body

        body = login_body(session)
    else:
        body = Html(f"<p>Error code <code>{exc.code}</code>.</p>")
    title = "Log in" if isinstance(exc, LoginFailed | LoginThrottled) else "Refused"
    return page(session, title, body, status=status, flash=f"{exc.code}: {exc.message}",
                flash_kind="error")  # fmt: skip
