"""The console's pages and forms over a real central log: sessions, CSRF, roles, replay."""

from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from exchange.console import REPLAYER
from exchange.console.context import CONSOLE
from exchange.ledger.chain import GENESIS_HASH, link
from exchange.ledger.event import AuditEvent, EventName
from exchange.testing import ThrowawayPKI

from .conftest import CASE, PASSWORD, T0, ConsoleUnderTest, console_under_test

REPLAY = {"party": "land-property", "message_id": "req-3-x", "confirm": "yes"}


async def test_anonymous_is_sent_to_login(console: ConsoleUnderTest) -> None:
    """Every page but the login asks an anonymous visitor to log in."""
    browser = await console.browser()
    for path in ("/search", f"/case/{CASE}", "/deadlines", "/dead-letters", "/certificates"):
        status, _, response = await browser.get(path)
        assert (status, response.headers["Location"]) == (303, "/login"), path


async def test_session_cookie_is_secure_httponly_samesite(console: ConsoleUnderTest) -> None:
    """The cookie holds a random id only, HTTPS-only, hidden from scripts, same-site."""
    browser = await console.browser()
    _, _, response = await browser.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=Strict" in cookie
    await browser.log_in("alsu")
    assert browser.session is not None
    assert len(browser.session) >= 40
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_post_without_csrf_token_is_refused(console: ConsoleUnderTest) -> None:
    """A form posted without the token, or with another session's, is 403 csrf-invalid."""
    browser = await console.browser()
    await browser.get("/login")
    status, text, _ = await browser.post(
        "/login", {"user": "alsu", "password": PASSWORD}, csrf=False
    )
    assert status == 403
    assert "csrf-invalid" in text
    other = await console.browser()
    await other.get("/login")
    browser.token = other.token
    status, text, _ = await browser.post("/login", {"user": "alsu", "password": PASSWORD})
    assert status == 403
    assert "csrf-invalid" in text
    stranger = await console.browser()  # no session at all
    status, text, _ = await stranger.post("/login", {"user": "alsu", "password": PASSWORD})
    assert status == 403
    assert "csrf-invalid" in text


async def test_wrong_password_then_throttled(console: ConsoleUnderTest) -> None:
    """Wrong passwords are 401 login-failed; past the limit, 429 login-throttled."""
    browser = await console.browser()
    await browser.get("/login")
    for _ in range(3):
        status, text, _ = await browser.post(
            "/login", {"user": "alsu", "password": "not it at all"}
        )
        assert status == 401
        assert "login-failed" in text
    status, text, _ = await browser.post("/login", {"user": "alsu", "password": PASSWORD})
    assert status == 429
    assert "login-throttled" in text


async def test_support_searches_and_reads_a_case(console: ConsoleUnderTest) -> None:
    """Search by case id lists its records; the case page shows holds, deadline and checks."""
    browser = await console.browser()
    await browser.log_in("alsu")
    status, text, _ = await browser.get(f"/search?case_id={CASE}&party=land-property")
    assert status == 200
    assert text.count("<tr>") == 1 + 6  # the header and land-property's records
    status, text, _ = await browser.get(f"/case/{CASE}")
    assert status == 200
    for party in ("single-center", "improvement", "land-property"):
        assert party in text
    assert "14 calendar days" in text
    assert "still open" in text
    assert 'class="badge overdue"' in text  # improvement held req-1 for 30 days
    # every record's hash and link hold (all 11 of the case's records)
    assert text.count('class="badge ok">verified<') == 11
    status, text, _ = await browser.get(f"/envelope/{0:064x}")
    assert status == 200
    assert "Digest only" in text
    status, body, _ = await browser.get(f"/case/{CASE}/evidence.json")
    assert status == 200
    assert set(json.loads(body)["chains"]) == {"single-center", "improvement", "land-property"}


async def test_deadline_board_flags_the_overdue_request(console: ConsoleUnderTest) -> None:
    """The open tree-felling request is overdue 30 days on; the chart is inline SVG."""
    browser = await console.browser()
    await browser.log_in("alsu")
    status, text, _ = await browser.get("/deadlines")
    assert status == 200
    assert '<tr class="overdue">' in text
    assert "req-1" in text
    assert "<svg" in text
    assert "land-plot-info (land-property)" in text


async def test_replay_refused_to_anonymous_and_support(console: ConsoleUnderTest) -> None:
    """Anonymous and support are refused (403 role-forbidden) even with a valid token; the
    replayer is never called."""
    anonymous = await console.browser()
    await anonymous.get("/login")
    status, text, _ = await anonymous.post("/dead-letters/replay", REPLAY)
    assert status == 403
    assert "role-forbidden" in text
    status, text, _ = await anonymous.post("/dead-letters/replay", REPLAY, csrf=False)
    assert status == 403
    assert "csrf-invalid" in text
    support = await console.browser()
    await support.log_in("alsu")
    status, text, _ = await support.get("/dead-letters")
    assert "req-3-x" in text
    assert "processing-failed after the retry limit" in text
    assert "the signature does not verify" in text  # architecture's quarantine, with reason
    assert "Replay…" not in text
    status, text, _ = await support.get("/dead-letters/replay?party=land-property&message_id=r")
    assert status == 403
    assert "role-forbidden" in text
    with capture_logs() as logs:
        status, text, _ = await support.post("/dead-letters/replay", REPLAY)
    assert status == 403
    assert "role-forbidden" in text
    assert console.replayer.calls == []
    refused = [e for e in logs if e["event"] == "console.admin_refused"]
    assert [e["actor"] for e in refused] == ["alsu"]


async def test_admin_replays_after_confirming(console: ConsoleUnderTest) -> None:
    """An admin sees the button, confirms, and the replayer gets party, request and actor."""
    admin = await console.browser()
    await admin.log_in("rinat")
    status, text, _ = await admin.get("/dead-letters")
    assert "Replay…" in text
    status, text, _ = await admin.get("/dead-letters/replay?party=land-property&message_id=req-3-x")
    assert status == 200
    assert "Yes, replay it" in text
    status, text, _ = await admin.post("/dead-letters/replay", {**REPLAY, "confirm": ""})
    assert status == 400
    assert console.replayer.calls == []
    with capture_logs() as logs:
        status, text, _ = await admin.post("/dead-letters/replay", REPLAY)
    assert status == 200
    assert "command-1" in text
    assert console.replayer.calls == [("land-property", "req-3-x", "rinat")]
    audited = [e for e in logs if e["event"] == "console.admin_action"]
    assert audited == [
        {
            "event": "console.admin_action",
            "log_level": "info",
            "actor": "rinat",
            "action": "replay",
            "party": "land-property",
            "message_id": "req-3-x",
            "outcome": "sent",
            "sent": "command-1",
        }
    ]


async def test_broker_dead_letters_are_listed_and_replayable(console: ConsoleUnderTest) -> None:
    """A broker dead letter a node noted shows with the broker's reason and a replay button
    for admins; one that does not verify shows its refusal and no button."""
    death = {"reason": "delivery_limit", "count": 20, "queue": "kzn.party.urban-permits.inbox"}
    noted = AuditEvent(
        EventName.BROKER_DEAD_LETTER,
        "req-dlq-1",
        None,
        "KZN-2026-000900",
        "urban-plan-extract",
        "request",
        digest="a" * 64,
        detail={**death, "verified": True, "sender": "single-center"},
    )
    junk = AuditEvent(
        EventName.BROKER_DEAD_LETTER,
        digest="b" * 64,
        detail={**death, "verified": False, "code": "malformed"},
    )
    first = link(1, T0, "urban-permits", noted, GENESIS_HASH)
    await console.app[CONSOLE].central.load([first, link(2, T0, "urban-permits", junk, first.hash)])
    admin = await console.browser()
    await admin.log_in("rinat")
    _, text, _ = await admin.get("/dead-letters")
    section = text.split("<h2>urban-permits</h2>", 1)[1].split("<h2>", 1)[0]
    assert "broker: delivery_limit (20 deliveries)" in section
    assert "does not verify (malformed)" in section
    assert section.count("Replay…") == 1
    assert "party=urban-permits&amp;message_id=req-dlq-1" in section


async def test_replay_without_a_replayer(
    tmp_path: Path, users_path: Path, pki: ThrowawayPKI
) -> None:
    """A console with no replayer says replay-unavailable (503) to an admin."""
    async for app, server, clock in console_under_test(tmp_path, users_path, pki, None):
        assert REPLAYER not in app
        under_test = ConsoleUnderTest(app, server, clock, replayer=None)  # type: ignore[arg-type]
        admin = await under_test.browser()
        await admin.log_in("rinat")
        status, text, _ = await admin.post("/dead-letters/replay", REPLAY)
        assert status == 503
        assert "replay-unavailable" in text
        for client in under_test.clients:
            await client.close()


async def test_certificates_page(console: ConsoleUnderTest) -> None:
    """Every issued certificate is listed with its status and the CRL's next update."""
    browser = await console.browser()
    await browser.log_in("alsu")
    status, text, _ = await browser.get("/certificates")
    assert status == 200
    assert "improvement" in text
    assert "next update" in text
    assert text.count('class="badge valid"') >= 2


async def test_logout_ends_the_session(console: ConsoleUnderTest) -> None:
    """After logging out the old cookie opens nothing."""
    browser = await console.browser()
    await browser.log_in("alsu")
    old = browser.session
    status, _, _ = await browser.post("/logout", {})
    assert status == 303
    browser.session = old
    status, _, response = await browser.get("/search")
    assert (status, response.headers["Location"]) == (303, "/login")
