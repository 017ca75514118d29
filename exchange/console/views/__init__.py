"""The console's pages, one module each; ``add_routes`` puts them on an application."""

from __future__ import annotations

from aiohttp import web

from exchange.console.views import auth, board, case, certs, dead, probe, search

__all__ = ["add_routes"]


def add_routes(app: web.Application) -> None:
    """Every page and form of the console."""
    app.add_routes([*auth.routes, *search.routes, *case.routes, *board.routes])
    app.add_routes([*dead.routes, *certs.routes, *probe.routes])
