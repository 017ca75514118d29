"""CSRF protection: every form carries its session's token, every POST must bring it back.

The token is random per session (the anonymous session before login has one too, so the
login form is covered) and compared in constant time. A POST without a session, without the
field or with another session's token is refused with 403 ``csrf-invalid`` before any view
runs.
"""

from __future__ import annotations

import hmac
from html import escape

from aiohttp import web

from exchange.console.auth import Session
from exchange.exceptions import CsrfInvalid

FIELD = "csrf"


def field(session: Session) -> str:
    """The hidden input every form includes."""
    return f'<input type="hidden" name="{FIELD}" value="{escape(session.csrf)}">'


async def check(request: web.Request, session: Session | None) -> None:
    """Check a POST's token against its session's.

    Raises:
        CsrfInvalid (csrf-invalid): no session, no token, or not this session's token.
    """
    if session is None:
        raise CsrfInvalid("no session: open the page again and resubmit the form")
    form = await request.post()
    sent = form.get(FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfInvalid(
            "the form did not carry this session's CSRF token: reload the page and try again"
        )
