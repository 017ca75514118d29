"""Rendering pages: the templates shipped as package data, filled with escaped text.

Templates are ``string.Template`` files; every value put into one is escaped here unless it
is a ``Html`` fragment another render step built (escaped there). Nothing renders raw input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from html import escape
from importlib import resources
from string import Template

from aiohttp import web

from exchange.console import csrf
from exchange.console.auth import Role, Session
from exchange.ledger.chain import canonical_time


class Html(str):
    """Text that is already HTML (built from escaped parts): put into templates as is."""

    __slots__ = ()


@cache
def template(name: str) -> Template:
    """A packaged template by file name."""
    text = resources.files("exchange.console").joinpath("templates", name).read_text("utf-8")
    return Template(text)


def asset(name: str) -> bytes:
    """A packaged static file (CSS, the live-update script)."""
    return resources.files("exchange.console").joinpath("templates", name).read_bytes()


def fill(name: str, **values: object) -> Html:
    """Fill a template: ``Html`` values as they are, everything else escaped."""
    return Html(
        template(name).substitute(
            {k: v if isinstance(v, Html) else escape(str(v)) for k, v in values.items()}
        )
    )


def when(at: datetime | None) -> str:
    """A time as support reads it (UTC, to the millisecond: one case's steps are often
    within a second)."""
    return "—" if at is None else canonical_time(at)[:23].replace("T", " ") + " UTC"


def duration(seconds: float) -> str:
    """A held time: days, hours, minutes or seconds, whichever reads best."""
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s"


def table(
    head: Sequence[str], rows: Iterable[tuple[Sequence[object], str]], body_id: str = ""
) -> Html:
    """A table; each row is (cells, CSS class); cells are escaped unless ``Html``."""
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead>"]
    out.append(f'<tbody id="{escape(body_id)}">' if body_id else "<tbody>")
    count = 0
    for cells, css in rows:
        count += 1
        out.append(f'<tr class="{escape(css)}">' if css else "<tr>")
        out.extend(f"<td>{c if isinstance(c, Html) else escape(str(c))}</td>" for c in cells)
        out.append("</tr>")
    if not count:
        out.append(f'<tr><td colspan="{len(head)}">nothing found</td></tr>')
    out.append("</tbody></table>")
    return Html("".join(out))


def link(href: str, text: str) -> Html:
    """An anchor (both parts escaped)."""
    return Html(f'<a href="{escape(href)}">{escape(text)}</a>')


def badge(text: str, kind: str) -> Html:
    """A small coloured label."""
    return Html(f'<span class="badge {escape(kind)}">{escape(text)}</span>')


def options(values: Iterable[str], chosen: str | None) -> Html:
    """``<option>`` elements with an empty first choice ("any")."""
    out = ['<option value="">any</option>']
    for value in values:
        selected = " selected" if value == chosen else ""
        out.append(f'<option value="{escape(value)}"{selected}>{escape(value)}</option>')
    return Html("".join(out))


_NAV = (
    ("/search", "Search"),
    ("/deadlines", "Deadlines"),
    ("/dead-letters", "Dead letters"),
    ("/certificates", "Certificates"),
    ("/asyncapi.json", "Bus contract (AsyncAPI)"),
)


def page(
    session: Session | None,
    title: str,
    body: Html,
    *,
    status: int = 200,
    flash: str = "",
    flash_kind: str = "info",
) -> web.Response:
    """A whole page in the console's layout."""
    logged_in = session is not None and session.user is not None
    nav = Html("".join(link(h, t) for h, t in _NAV)) if logged_in else Html("")
    who = Html("")
    if session is not None and session.user is not None and session.role is not None:
        role = "admin" if session.role is Role.ADMIN else "support"
        who = Html(
            f"{escape(session.user)} ({role})"
            f'<form method="post" action="/logout">{csrf.field(session)}'
            '<button type="submit">Log out</button></form>'
        )
    notice = (
        Html(f'<div class="flash {escape(flash_kind)}" role="alert">{escape(flash)}</div>')
        if flash
        else Html("")
    )
    html = fill("base.html", title=title, nav=nav, who=who, flash=notice, body=body)
    return web.Response(text=html, content_type="text/html", status=status)
