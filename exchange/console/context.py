"""What every view of the console needs, kept on the application under one key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from exchange._clock import Clock
from exchange.audit.central import CentralStore
from exchange.catalog import Catalog
from exchange.console.auth import Authenticator, Session, Sessions
from exchange.console.config import ConsoleSettings
from exchange.console.live import LiveHub
from exchange.console.queries import ConsoleQueries
from exchange.observe.health import Readiness
from exchange.pki.trust import TrustStore

log = structlog.get_logger("exchange.console")
SESSION_COOKIE = "kzn_console"


class LazyTrust:
    """The trust store of a certs directory, loaded on first use and kept (it re-reads its
    CRL file whenever that changes): one per console, not one per page."""

    def __init__(self, certs_dir: Path) -> None:
        self.certs_dir = certs_dir
        self._store: TrustStore | None = None

    def get(self) -> TrustStore:
        """The trust store.

        Raises:
            CertificateUnknown (certificate-unknown), PKIFileCorrupt (pki-file-corrupt): no
                usable root CA in the directory (tried again at the next call).
        """
        if self._store is None:
            self._store = TrustStore.from_dir(self.certs_dir)
        return self._store


@dataclass(slots=True)
class Console:
    """The console's parts: the central log and its queries, users, sessions, the trust
    store's directory, the live hub, its readiness checks and the bus's AsyncAPI document."""

    settings: ConsoleSettings
    central: CentralStore
    catalog: Catalog
    certs_dir: Path
    clock: Clock
    queries: ConsoleQueries
    auth: Authenticator
    sessions: Sessions
    hub: LiveHub
    readiness: Readiness
    asyncapi: dict[str, Any]
    trust: LazyTrust


CONSOLE = web.AppKey("console", Console)
SESSION = web.RequestKey("console.session", Session)  # this request's session


def session_of(request: web.Request) -> Session:
    """This request's session (the middleware always sets one)."""
    return request[SESSION]


def audit_admin(actor: str, action: str, **what: object) -> None:
    """The structlog record every admin action leaves (beside what its command carries)."""
    log.info("console.admin_action", actor=actor, action=action, **what)
