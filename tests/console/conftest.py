"""Fixtures of the console tests: a central log with a three-department case, users, and a
client that keeps the session cookie by hand (so Secure cookies work over the test's HTTP)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from exchange._clock import FrozenClock
from exchange.audit.central import SQLiteCentralStore
from exchange.catalog import Catalog
from exchange.config import packaged
from exchange.console import ConsoleSettings, Replayer, Role, UsersFile, create_app
from exchange.console.context import SESSION_COOKIE
from exchange.ledger.chain import GENESIS_HASH, link
from exchange.ledger.event import AuditEvent, AuditRecord, EventName
from exchange.testing import ThrowawayPKI

PASSWORD = "correct horse battery"
T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
CASE = "KZN-2026-000777"
_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def case_records() -> list[AuditRecord]:
    """single-center asks improvement (tree felling), which asks land-property; improvement
    never answers, and one of land-property's requests went dead."""

    def step(minute: int, party: str, event: str, mid: str, corr: str | None, kind: str) -> Any:
        service = "land-plot-info" if mid.endswith("-2") else "tree-felling-permit"
        return (T0 + timedelta(minutes=minute), party, AuditEvent(
            EventName(event), mid, corr, CASE, service, kind, digest=f"{minute:064x}"
        ))  # fmt: skip

    sc, im, lp = "single-center", "improvement", "land-property"
    steps = [
        step(0, sc, "created", "req-1", None, "request"),
        step(2, im, "received", "req-1", None, "request"),
        step(3, im, "receipt-sent", "rcpt-1", "req-1", "receipt"),
        step(10, im, "created", "req-2", None, "request"),
        step(20, lp, "received", "req-2", None, "request"),
        step(30, lp, "responded", "resp-2", "req-2", "response"),
        step(30, lp, "answered", "req-2", None, "request"),
        step(31, im, "response-received", "resp-2", "req-2", "response"),
        step(40, lp, "received", "req-3-x", None, "request"),
        step(45, lp, "dead-lettered", "flt-3", "req-3-x", "fault"),
        step(45, lp, "dead", "req-3-x", None, "request"),
    ]
    records: list[AuditRecord] = []
    for party in (sc, im, lp):
        prev = GENESIS_HASH
        for seq, (at, p, event) in enumerate((s for s in steps if s[1] == party), 1):
            records.append(link(seq, at, p, event, prev))
            prev = records[-1].hash
    quarantined = AuditEvent(
        EventName.QUARANTINED,
        digest="f" * 64,
        detail={"code": "signature-invalid", "reason": "the signature does not verify"},
    )
    records.append(link(1, T0, "architecture", quarantined, GENESIS_HASH))
    return records


@dataclass
class RecordingReplayer:
    """Remembers what it was asked to replay (stands in for the archive's signed command)."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    async def replay(self, party: str, message_id: str, actor: str) -> str:
        """Record the call."""
        self.calls.append((party, message_id, actor))
        return f"command-{len(self.calls)}"


class Browser:
    """A test client that keeps the console's session cookie itself."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client
        self.session: str | None = None
        self.token: str | None = None

    def _remember(self, response: Any) -> None:
        morsel = response.cookies.get(SESSION_COOKIE)
        if morsel is not None:
            self.session = morsel.value

    def _headers(self) -> dict[str, str]:
        return {"Cookie": f"{SESSION_COOKIE}={self.session}"} if self.session else {}

    async def get(self, path: str) -> tuple[int, str, Any]:
        """GET without following redirects; remembers the cookie and the page's CSRF token."""
        response = await self.client.get(path, headers=self._headers(), allow_redirects=False)
        text = await response.text()
        self._remember(response)
        found = _TOKEN.search(text)
        if found:
            self.token = found.group(1)
        return response.status, text, response

    async def post(
        self, path: str, data: dict[str, str], *, csrf: bool = True
    ) -> tuple[int, str, Any]:
        """POST a form (with this session's token unless ``csrf`` is False)."""
        form = {**data, "csrf": self.token or ""} if csrf else dict(data)
        response = await self.client.post(
            path, data=form, headers=self._headers(), allow_redirects=False
        )
        text = await response.text()
        self._remember(response)
        return response.status, text, response

    async def log_in(self, user: str, password: str = PASSWORD) -> None:
        """Open the login page and log in; assert it worked."""
        await self.get("/login")
        status, text, _ = await self.post("/login", {"user": user, "password": password})
        assert status == 303, text
        await self.get("/search")


@dataclass
class ConsoleUnderTest:
    """The console app's parts as a test sees them."""

    app: web.Application
    server: TestServer
    clock: FrozenClock
    replayer: RecordingReplayer
    clients: list[TestClient[web.Request, web.Application]] = field(default_factory=list)

    async def browser(self) -> Browser:
        """A fresh client (its own session), closed with the fixture."""
        client: TestClient[web.Request, web.Application] = TestClient(
            self.server, cookie_jar=DummyCookieJar()
        )
        await client.start_server()
        self.clients.append(client)
        return Browser(client)


@pytest.fixture
def users_path(tmp_path: Path) -> Path:
    """A users file with support ``alsu`` and admin ``rinat``."""
    users = UsersFile(tmp_path / "users.json")
    users.add("alsu", Role.SUPPORT, PASSWORD)
    users.add("rinat", Role.ADMIN, PASSWORD)
    return users.path


async def console_under_test(
    tmp_path: Path, users_path: Path, pki: ThrowawayPKI, replayer: Replayer | None
) -> AsyncIterator[tuple[web.Application, TestServer, FrozenClock]]:
    """The console over a central log holding ``case_records``, 30 days after them."""
    central = SQLiteCentralStore(tmp_path / "central.db")
    await central.open()
    await central.load(case_records())
    clock = FrozenClock(T0 + timedelta(days=30))
    catalog = Catalog.load(packaged("catalog.toml"), packaged("schemas"))
    settings = ConsoleSettings(users=users_path, login_attempts=3)
    app = create_app(central, catalog, pki.path, clock, settings, replayer=replayer)
    server = TestServer(app)
    await server.start_server()
    try:
        yield app, server, clock
    finally:
        await server.close()
        await central.close()


@pytest.fixture
async def console(
    tmp_path: Path, users_path: Path, pki: ThrowawayPKI
) -> AsyncIterator[ConsoleUnderTest]:
    """The console with a recording replayer."""
    replayer = RecordingReplayer()
    async for app, server, clock in console_under_test(tmp_path, users_path, pki, replayer):
        under_test = ConsoleUnderTest(app, server, clock, replayer)
        yield under_test
        for client in under_test.clients:
            await client.close()
