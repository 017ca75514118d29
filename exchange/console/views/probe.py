"""What anyone may ask without a session: ``/health`` (alive), ``/ready`` (the central log
answers, the trust store and its CRL are current, the replay connection is up where the
console has one) and ``/asyncapi.json`` (the bus's contract, as `exchange services
asyncapi` writes it)."""

from __future__ import annotations

from aiohttp import web

from exchange.console.context import CONSOLE
from exchange.observe.server import alive, ready

routes = web.RouteTableDef()
PUBLIC_PATHS = frozenset({"/health", "/ready", "/asyncapi.json"})
"""Served without a session or its cookie: probes and machines ask these."""


@routes.get("/health")
async def health(_: web.Request) -> web.Response:
    """The process answers."""
    return alive("console")


@routes.get("/ready")
async def readiness(request: web.Request) -> web.Response:
    """200 when every check passes; 503 naming what is not ready."""
    return await ready(request.app[CONSOLE].readiness, "console")


@routes.get("/asyncapi.json")
async def asyncapi(request: web.Request) -> web.Response:
    """The AsyncAPI 3.0 document of the bus the console's catalog describes."""
    return web.json_response(request.app[CONSOLE].asyncapi)
