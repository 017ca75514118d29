"""The console in Debian's Chromium (Playwright), over a real run: the city's nodes and the
collector on the real broker, the console following the collector's feed.

One module-wide run: five applications answered (a tree-felling case crosses three
departments), then Land and Property stops and one more tree-felling application stays
parked at Improvement, open. The console's clock stands 30 days later, so that request is
overdue (tree felling: 14 days). Screenshots go to ``screenshots/`` (git-ignored).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import aio_pika
import pytest
import pytest_asyncio
from aiohttp import web
from pamqp.common import FieldTable
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from adapters.single_center.applications import Application, applications
from exchange._clock import SYSTEM_CLOCK, FrozenClock
from exchange.admin import AdminClient
from exchange.audit.central import RecordQuery, SQLiteCentralStore
from exchange.audit.collector import Collector
from exchange.audit.feed import CentralFeed
from exchange.audit.trace import trace
from exchange.catalog import Catalog, Role
from exchange.config import Settings
from exchange.console import ConsoleSettings, UsersFile, create_app
from exchange.console.auth import Role as ConsoleRole
from exchange.ledger.event import EventName
from exchange.node import Node, build_node
from exchange.node.adapters import load_adapters
from exchange.signing import WireFormat, seal
from exchange.testing import ThrowawayPKI, make_envelope
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.adapters.conftest import FAST, city_catalog, city_pki
from tests.audit._live import until
from tests.bus.conftest import AMQP_URL, delete_topology
from tests.bus.helpers import store_as_sent
from tests.catalog._city import REPO

__all__ = ["city_catalog", "city_pki"]  # the adapters' session fixtures, used here too

pytestmark = [pytest.mark.slow, pytest.mark.rabbit, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "screenshots"
PASSWORD = "correct horse battery"
WAIT_MS = 30_000


@dataclass
class Run:
    """What the tests drive: the console's address, the run's cases, the nodes still up."""

    url: str
    case: str  # answered, across three departments
    parked_case: str  # open at improvement, overdue by the console's clock
    front: Node
    improvement: Node
    browser: Browser


async def _file(front: Node, application: Application) -> str:
    return await front.request(
        application.service,
        application.payload,
        case_id=application.case_id,
        wire_format=application.wire_format,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(
    tmp_path_factory: pytest.TempPathFactory, city_pki: ThrowawayPKI, city_catalog: Catalog
) -> AsyncIterator[Run]:
    """The city, the collector and the console, for the whole module."""
    tmp = tmp_path_factory.mktemp("console-run")
    names = BusNames(f"tcon{uuid.uuid4().hex[:8]}.")
    settings = Settings(
        certs_dir=city_pki.path,
        schemas_dir=REPO / "exchange/data/schemas",
        catalog=REPO / "exchange/data/catalog.toml",
        amqp_url=AMQP_URL,
        bus_prefix=names.prefix,
        store_dir=tmp / "stores",
        store_dsn=None,
    )
    trust = city_pki.trust()
    central = SQLiteCentralStore(tmp / "central.db")
    me = city_catalog.identity(Role.COLLECTOR).id
    collector = Collector(
        Bus(AMQP_URL), names, central, trust, SYSTEM_CLOCK, city_pki.credentials(me)
    )
    nodes: dict[str, Node] = {}
    admin_bus = Bus(AMQP_URL)  # the console's signed admin commands travel on it
    runner: web.AppRunner | None = None
    playwright = await async_playwright().start()
    try:
        await collector.start()
        for adapter in load_adapters(city_catalog):
            config = adapter.config.node_config(**FAST)
            node = build_node(adapter.party, settings, config=config, catalog=city_catalog)
            adapter.register(node)
            await node.start()
            nodes[adapter.party] = node
        front = nodes["single-center"]
        today = SYSTEM_CLOCK.now().date()
        stream = applications(5, today=today)
        ids = [await _file(front, a) for a in stream]
        for request_id in ids:
            assert (await front.wait_answer(request_id, 30)).kind in ("response", "fault")
        crossing = next(a for a in stream if a.service == "tree-felling-permit")
        assert crossing.asks_another_department

        async def three_departments() -> bool:
            steps = (await trace(central, crossing.case_id, SYSTEM_CLOCK.now())).steps
            return len({s.party for s in steps}) >= 3

        await until(three_departments, 30.0, "the collector to hold the three-department case")

        await nodes.pop("land-property").stop()  # improvement's question now waits
        later = next(
            a for a in applications(5, today=today, first_case=500)
            if a.service == "tree-felling-permit"
        )  # fmt: skip
        await _file(front, later)
        parked = RecordQuery(case_id=later.case_id, party="improvement", events=("received",))

        async def received() -> bool:
            return bool(await central.search(parked))

        await until(received, 30.0, "improvement to receive the parked application")

        users = UsersFile(tmp / "users.json")
        users.add("alsu", ConsoleRole.SUPPORT, PASSWORD)
        users.add("rinat", ConsoleRole.ADMIN, PASSWORD)
        options = ConsoleSettings(users=users.path)
        clock = FrozenClock(SYSTEM_CLOCK.now() + timedelta(days=30))
        feed = CentralFeed(AMQP_URL, names, trust)
        await admin_bus.start()
        console_id = city_catalog.identity(Role.CONSOLE).id
        replayer = AdminClient(admin_bus, names, city_pki.credentials(console_id))
        app = create_app(
            central, city_catalog, city_pki.path, clock, options, feed=feed, replayer=replayer
        )
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        url = f"http://127.0.0.1:{port}"
        yield Run(url, crossing.case_id, later.case_id, front, nodes["improvement"], browser)
        await browser.close()
    finally:
        await playwright.stop()
        if runner is not None:
            await runner.cleanup()
        await admin_bus.stop()
        for node in reversed(list(nodes.values())):
            await node.stop()
        await collector.stop()
        await delete_topology(names, tuple(p.id for p in city_catalog.parties))


@pytest.fixture(scope="module", autouse=True)
def screenshots() -> None:
    """A fresh folder for this run's screenshots."""
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir()


async def _context(run: Run) -> BrowserContext:
    context = await run.browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    return context


async def _log_in(run: Run, user: str) -> tuple[BrowserContext, Page]:
    context = await _context(run)
    page = await context.new_page()
    await page.goto(f"{run.url}/search")
    await expect(page.locator("h1")).to_have_text("Log in")  # sent to the login page
    await page.fill("input[name=user]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Search the audit log")
    return context, page


async def test_support_searches_a_case_and_sees_its_timeline(run: Run) -> None:
    """Support logs in, searches the case, opens it: three departments hold it in turn."""
    context, page = await _log_in(run, "alsu")
    await page.fill("input[name=case_id]", run.case)
    await page.click("form.search button[type=submit]")
    await page.wait_for_selector(f"table a:text('{run.case}')")
    assert await page.locator("tbody tr").count() > 10
    await page.screenshot(path=str(SHOTS / "search.png"), full_page=True)
    await page.locator(f"table a:text('{run.case}')").first.click()
    await expect(page.locator("h1")).to_have_text(f"Case {run.case}")
    holds = page.locator("table").first
    await expect(holds).to_contain_text("improvement")
    await expect(holds).to_contain_text("land-property")
    await expect(holds).to_contain_text("14 calendar days")
    timeline = await page.locator("#timeline-body").inner_text()
    for party in ("single-center", "improvement", "land-property"):
        assert party in timeline
    assert "verified" in timeline
    await page.screenshot(path=str(SHOTS / "case.png"), full_page=True)
    await page.locator("#timeline-body a[href^='/envelope/']").first.click()
    await expect(page.locator("h1")).to_have_text("Envelope")
    # The collector archived it (the service archives in full): shown as signed and checked
    # again at the console's clock, 30 days on, when the run's CRL has lapsed: the verdict
    # says so (the certificates page raises the same alert) instead of passing it.
    await expect(page.locator("main")).to_contain_text("bytes as signed")
    await expect(page.locator("pre.wire")).not_to_be_empty()
    await expect(page.locator("main")).to_contain_text("not verified revocation-unknown")
    await context.close()


async def test_new_events_appear_live_on_the_case_page(run: Run) -> None:
    """A new request in the open case shows up on its page without a reload (SSE)."""
    context, page = await _log_in(run, "alsu")
    await page.goto(f"{run.url}/case/{run.case}")
    await expect(page.locator("#live-status")).to_have_text("live: new events appear here")
    rows = await page.locator("#timeline-body tr").count()
    extra = next(a for a in applications(5, today=SYSTEM_CLOCK.now().date())
                 if a.service == "stormwater-conditions")  # fmt: skip
    await run.front.request(
        extra.service, extra.payload, case_id=run.case, wire_format=extra.wire_format
    )
    await page.wait_for_selector("#timeline-body tr.new")
    assert await page.locator("#timeline-body tr").count() > rows
    await context.close()


async def test_deadline_board_flags_the_overdue_request(run: Run) -> None:
    """The parked tree-felling request is open 30 days on: flagged overdue, listed first."""
    context, page = await _log_in(run, "alsu")
    await page.goto(f"{run.url}/deadlines")
    first = page.locator("tbody tr.overdue").first
    await expect(first).to_contain_text(run.parked_case)
    await expect(first).to_contain_text("overdue")
    await expect(first).to_contain_text("tree-felling-permit")
    assert await page.locator("svg.chart rect.chart-bar").count() >= 1
    await page.screenshot(path=str(SHOTS / "deadlines.png"), full_page=True)
    await context.close()


async def test_certificates_page(run: Run) -> None:
    """Every party's certificate is listed with its status; the CRL's next update shown."""
    context, page = await _log_in(run, "alsu")
    await page.goto(f"{run.url}/certificates")
    await expect(page.locator("main")).to_contain_text("next update")
    for party in ("single-center", "improvement", "collector"):
        await expect(page.locator("main table").last).to_contain_text(party)
    await page.screenshot(path=str(SHOTS / "certificates.png"), full_page=True)
    await context.close()


async def _token(page: Page) -> str:
    value = await page.locator("input[name=csrf]").first.get_attribute("value")
    assert value
    return value


async def test_replay_refused_to_support_and_anonymous(run: Run) -> None:
    """Support is refused the confirmation page and the POST; anonymous is refused the POST
    even with a valid session token."""
    form = {"party": "improvement", "message_id": "any", "confirm": "yes"}
    context, page = await _log_in(run, "alsu")
    await page.goto(f"{run.url}/dead-letters/replay?party=improvement&message_id=any")
    await expect(page.locator(".flash.error")).to_contain_text("role-forbidden")
    response = await context.request.post(
        f"{run.url}/dead-letters/replay", form={**form, "csrf": await _token(page)}
    )
    assert response.status == 403
    assert "role-forbidden" in await response.text()
    await context.close()

    anonymous = await _context(run)
    page = await anonymous.new_page()
    await page.goto(f"{run.url}/login")
    response = await anonymous.request.post(
        f"{run.url}/dead-letters/replay", form={**form, "csrf": await _token(page)}
    )
    assert response.status == 403
    assert "role-forbidden" in await response.text()
    await anonymous.close()


async def test_admin_replay_is_carried_out_by_the_partys_node(run: Run) -> None:
    """An admin confirms a replay; the console signs the command and improvement's node judges
    it under its own rules: the request got its final answer, so it is refused (already-final),
    and the command (with the admin's name) and the refusal are in improvement's audit log."""
    received = [
        r.event.message_id
        for r in await run.improvement.events(limit=100_000)
        if r.event.event is EventName.RECEIVED and r.event.case_id == run.case
    ]
    request_id = received[0]
    context, page = await _log_in(run, "rinat")
    query = urlencode({"party": "improvement", "message_id": request_id})
    await page.goto(f"{run.url}/dead-letters/replay?{query}")
    await page.get_by_role("button", name="Yes, replay it").click()
    await expect(page.locator(".flash")).to_contain_text(f"replay of {request_id} sent")

    async def judged() -> bool:
        events = [r.event for r in await run.improvement.events(limit=100_000)]
        asked = [e for e in events if e.event is EventName.ADMIN_COMMAND]
        refused = [e for e in events if e.event is EventName.REPLAY_REFUSED]
        return any(
            e.message_id == request_id and e.detail["actor"] == "rinat" for e in asked
        ) and any(
            e.message_id == request_id and e.detail["code"] == "already-final" for e in refused
        )

    await until(judged, 30.0, "improvement to judge the replay command")
    await context.close()


async def _broker_dead_letter(run: Run, wire: bytes) -> None:
    """Put ``wire`` in improvement's dead-letter queue as the broker does past the delivery
    limit (with its x-death header): the node is up, so it cannot be made to fail for real."""
    names = run.improvement.ctx.names
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        dlx = await channel.get_exchange(names.dead_letter)
        death: FieldTable = {
            "reason": "delivery_limit",
            "count": 20,
            "queue": names.inbox("improvement"),
            "time": SYSTEM_CLOCK.now().replace(microsecond=0),
        }
        message = aio_pika.Message(
            wire, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, headers={"x-death": [death]}
        )
        await dlx.publish(message, routing_key="improvement", mandatory=True, timeout=10)


async def test_admin_replays_a_broker_dead_letter(run: Run) -> None:
    """A request the broker dead-lettered is noted by improvement's census, reaches the
    console through the collector with the broker's reason, and an admin's replay puts it
    back: improvement's node receives it (its handler then asks Land and Property)."""
    application = next(
        a for a in applications(5, today=SYSTEM_CLOCK.now().date(), first_case=900)
        if a.service == "tree-felling-permit"
    )  # fmt: skip
    envelope = make_envelope(SYSTEM_CLOCK, case_id=application.case_id, payload=application.payload)
    wire = seal(envelope, run.front.ctx.credentials, WireFormat.JSON)
    await store_as_sent(run.front, envelope, wire)
    await _broker_dead_letter(run, wire)
    assert await run.improvement.dead_letters.census() == 1
    context, page = await _log_in(run, "rinat")

    async def listed() -> bool:
        await page.goto(f"{run.url}/dead-letters")
        return "broker: delivery_limit (20 deliveries)" in await page.content()

    await until(listed, 30.0, "the console to list the broker dead letter")
    await page.screenshot(path=SHOTS / "dead-letters.png", full_page=True)
    query = urlencode({"party": "improvement", "message_id": envelope.message_id})
    await page.click(f'a[href="/dead-letters/replay?{query}"]')
    await page.get_by_role("button", name="Yes, replay it").click()
    await expect(page.locator(".flash")).to_contain_text(f"replay of {envelope.message_id} sent")

    async def replayed() -> bool:
        events = [r.event for r in await run.improvement.events(limit=100_000)]
        done = {e.event for e in events if e.message_id == envelope.message_id}
        return {EventName.REPLAYED, EventName.RECEIVED} <= done

    await until(replayed, 30.0, "improvement to replay and receive the dead letter")
    await context.close()


async def test_post_without_csrf_token_is_refused(run: Run) -> None:
    """A form posted without its CSRF token is refused with 403 and says why."""
    context, _ = await _log_in(run, "rinat")
    response = await context.request.post(
        f"{run.url}/dead-letters/replay",
        form={"party": "improvement", "message_id": "any", "confirm": "yes"},
    )
    assert response.status == 403
    assert re.search(r"csrf-invalid: .*CSRF token", await response.text())
    await context.close()
