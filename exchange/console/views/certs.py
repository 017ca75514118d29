"""Certificates: every party's certificates with expiry (warning under 30 days), revoked
ones, the CRL's next update, and alerts for what is about to lapse."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from pathlib import Path

from aiohttp import web
from cryptography import x509

from exchange.console.auth import Role
from exchange.console.context import CONSOLE, session_of
from exchange.console.render import Html, badge, page, table, when
from exchange.exceptions import PKIError
from exchange.pki.authority import CertificateAuthority, IssuedCertificate
from exchange.pki.trust import CRL_FILE, crl_number

routes = web.RouteTableDef()
CRL_WARNING = timedelta(days=2)  # a CRL this close to its next update must be reissued soon


@routes.get("/certificates")
async def certificates(request: web.Request) -> web.Response:
    """The certificates of every identity and the CRL, as of the console's clock."""
    session = session_of(request)
    session.require(Role.SUPPORT)
    console = request.app[CONSOLE]
    now = console.clock.now()
    alerts: list[str] = []
    try:
        index = CertificateAuthority(console.certs_dir, console.clock).index()
    except PKIError as exc:
        return page(session, "Certificates", Html(""), flash=exc.message, flash_kind="error")
    index.sort(key=lambda c: (c.party, c.not_after))
    rows = []
    for cert in index:
        status = cert.status(now)
        left = datetime.fromisoformat(cert.not_after) - now
        if status == "expiring":
            alerts.append(f"{cert.party}'s certificate {cert.serial} expires in {left.days} days")
        rows.append((_cert_cells(cert, status, left), status))
    holders = {cert.party for cert in index if cert.status(now) in ("valid", "expiring")}
    for identity in console.catalog.identities:
        if identity.id not in holders:
            alerts.append(f"{identity.id} has no valid certificate: it cannot sign")
    crl_part, crl_alert = _crl(console.certs_dir / CRL_FILE, now)
    alerts += crl_alert
    notice = Html(
        "".join(f'<div class="flash error" role="alert">{escape(a)}</div>' for a in alerts)
        if alerts
        else '<div class="flash info">No certificate or CRL lapses within the warning period.</div>'
    )
    body = Html(
        notice
        + "<h2>Certificate revocation list</h2>"
        + crl_part
        + "<h2>Certificates</h2>"
        + table(
            ("party", "serial", "key", "valid from", "valid until", "days left", "status",
             "revoked", "reason"),
            rows,
        )
    )  # fmt: skip
    return page(session, "Certificates", body)


def _cert_cells(cert: IssuedCertificate, status: str, left: timedelta) -> list[object]:
    return [
        cert.party,
        cert.serial,
        cert.key_type,
        cert.not_before[:10],
        cert.not_after[:10],
        "—" if status in ("revoked", "expired") else max(left.days, 0),
        badge(status, status),
        cert.revoked_at[:19] if cert.revoked_at else "",
        cert.reason or "",
    ]


def _crl(path: Path, now: datetime) -> tuple[Html, list[str]]:
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except (OSError, ValueError) as exc:
        text = f"no readable CRL at {path}: {exc}"
        return Html(f"<p>{escape(text)}</p>"), [text]
    next_update = crl.next_update_utc
    alerts = []
    if next_update is None:
        state = badge("no next update", "warn")
    elif next_update <= now:
        state = badge("lapsed", "expired")
        alerts.append(f"the CRL lapsed at {when(next_update)}: run `exchange certs crl`")
    elif next_update - now < CRL_WARNING:
        state = badge("due soon", "expiring")
        alerts.append(f"the CRL's next update is due at {when(next_update)}")
    else:
        state = badge("current", "valid")
    cells: list[object] = [
        crl_number(crl) or "—", when(crl.last_update_utc), when(next_update), len(crl), state
    ]  # fmt: skip
    head = ("number", "issued", "next update", "revoked entries", "status")
    return table(head, [(cells, "")]), alerts
