"""Signed admin commands over the real broker: replay as a party's node carries it out.

The console (its own certificate, role console in the catalog) sends "replay request M";
improvement's node replays a request the broker dead-lettered before it was stored (its
handler runs, it is answered), refuses one with a final answer or still open, and
quarantines commands that do not verify, each with its code. Every step is audited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from typer.testing import CliRunner

from exchange._clock import SYSTEM_CLOCK, FrozenClock
from exchange.admin import AdminClient
from exchange.admin.command import (
    COMMAND_CONTENT_TYPE,
    Action,
    AdminCommand,
    open_command,
    seal_command,
)
from exchange.cli import app
from exchange.codec import b64url
from exchange.config import Settings
from exchange.envelope.model import Envelope
from exchange.ledger.event import AuditEvent, EventName
from exchange.node import LATER, IncomingRequest, Later, Node
from exchange.node.store.base import InboxState
from exchange.pki.authority import CertificateAuthority
from exchange.pki.credentials import Credentials
from exchange.signing import WireFormat, digest, seal
from exchange.testing import ThrowawayPKI, exchange_env, make_envelope
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.bus.conftest import AMQP_URL, BUS_PARTIES, FAST, MakeNode
from tests.bus.helpers import audit_events, eventually, store_as_sent, wait_event

pytestmark = pytest.mark.rabbit

PARTY = "improvement"
GRANTED = {"decision": "granted", "permit_number": "TF-REPLAY"}
TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}


@dataclass
class Consoles:
    """The console's credentials: good, expired, revoked."""

    good: Credentials
    expired: Credentials
    revoked: Credentials


def _credentials(pki: ThrowawayPKI, serial: str) -> Credentials:
    key = next(pki.path.rglob(f"{serial}.key"))
    return Credentials.load("console", key, key.with_suffix(".pem"))


@pytest.fixture(scope="module")
def consoles_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[ThrowawayPKI, Consoles]:
    """A PKI on the real clock whose console had a certificate that ended and one revoked."""
    pki = ThrowawayPKI.create(tmp_path_factory.mktemp("admin-pki"), BUS_PARTIES, SYSTEM_CLOCK)
    past = CertificateAuthority(pki.path, FrozenClock(SYSTEM_CLOCK.now() - timedelta(days=3)))
    expired = past.issue("console", days=1)
    revoked = pki.authority.issue("console")  # the ended one is not in the way
    good = pki.authority.rotate("console")
    pki.authority.revoke(revoked.serial)
    return pki, Consoles(
        good=_credentials(pki, good.serial),
        expired=_credentials(pki, expired.serial),
        revoked=_credentials(pki, revoked.serial),
    )


@pytest.fixture
def live_pki(consoles_pki: tuple[ThrowawayPKI, Consoles]) -> ThrowawayPKI:
    """The nodes of these tests trust the PKI with the console's certificates."""
    return consoles_pki[0]


@pytest.fixture
def consoles(consoles_pki: tuple[ThrowawayPKI, Consoles]) -> Consoles:
    """The console's credentials of the module's PKI."""
    return consoles_pki[1]


@pytest.fixture
async def console_bus() -> AsyncIterator[Bus]:
    """The console's connection to the broker."""
    bus = Bus(AMQP_URL)
    await bus.start()
    yield bus
    await bus.stop()


def _client(bus: Bus, settings: Settings, credentials: Credentials) -> AdminClient:
    return AdminClient(bus, BusNames(settings.bus_prefix), credentials)


async def _outcome(node: Node, command_id: str) -> tuple[AuditEvent, AuditEvent]:
    """The node's audited command and its outcome (the next record), once both are there."""

    async def both() -> tuple[AuditEvent, AuditEvent] | None:
        events = await audit_events(node)
        for index, event in enumerate(events):
            if event.event is EventName.ADMIN_COMMAND and event.detail["command_id"] == command_id:
                return event, events[index + 1]
        return None

    return await eventually(both, 15, f"command {command_id} carried out")


async def _dead_letter(settings: Settings, wire: bytes) -> None:
    """Put ``wire`` in improvement's inbox and nack it until the broker dead-letters it."""
    names = BusNames(settings.bus_prefix)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        bus = await channel.get_exchange(names.bus)
        await bus.publish(
            aio_pika.Message(wire, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=PARTY,
            mandatory=True,
            timeout=10,
        )
        inbox = await channel.get_queue(names.inbox(PARTY))
        dead = await channel.declare_queue(names.dead_letters(PARTY), passive=True)
        before = dead.declaration_result.message_count or 0  # others' leftovers
        for _ in range(500):
            message = await inbox.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.02)
            else:
                await message.nack(requeue=True)  # as a node whose store is down does
            declared = await channel.declare_queue(dead.name, passive=True)
            if (declared.declaration_result.message_count or 0) > before:
                return
        raise AssertionError("the broker never dead-lettered the request")


async def _topology(settings: Settings) -> None:
    bus = Bus(settings.amqp_url)
    bus.declare_on_connect(BusNames(settings.bus_prefix), BUS_PARTIES)
    await bus.start()
    await bus.stop()


async def _sent_and_dead_lettered(
    make_node: MakeNode, settings: Settings, case_id: str
) -> tuple[Node, Envelope, bytes]:
    """single-center's request to improvement, as sent, dead-lettered by the broker before
    improvement's node ever ran."""
    await _topology(settings)
    sender = await make_node("single-center")
    envelope = make_envelope(SYSTEM_CLOCK, case_id=case_id, payload=TREES)
    wire = seal(envelope, sender.ctx.credentials, WireFormat.JSON)
    await store_as_sent(sender, envelope, wire)
    await _dead_letter(settings, wire)
    return sender, envelope, wire


async def test_replay_of_a_broker_dead_letter(
    make_node: MakeNode, settings: Settings, console_bus: Bus, consoles: Consoles
) -> None:
    """A request the broker dead-lettered before it was stored is replayed: handled, answered."""
    sender, envelope, _ = await _sent_and_dead_lettered(make_node, settings, "KZN-REPLAY-1")
    provider = await make_node(PARTY)
    handled: list[IncomingRequest] = []

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        handled.append(request)
        return GRANTED

    command_id = await _client(console_bus, settings, consoles.good).replay(
        PARTY, envelope.message_id, "alice"
    )
    asked, outcome = await _outcome(provider, command_id)
    assert asked.message_id == envelope.message_id
    assert asked.detail["actor"] == "alice"
    assert asked.detail["console"] == "console"
    assert asked.detail["action"] == "replay"
    assert outcome.event is EventName.REPLAYED
    assert (outcome.message_id, outcome.case_id) == (envelope.message_id, "KZN-REPLAY-1")
    answer = await sender.wait_answer(envelope.message_id, timeout=15)
    assert answer.kind == "response"
    assert [r.message_id for r in handled] == [envelope.message_id]
    stored = await provider.ctx.store.get_inbox(envelope.message_id)
    assert stored is not None
    assert stored.state is InboxState.ANSWERED
    assert stored.digest == outcome.digest

    # The same command again changes nothing; a second replay is refused: it is final now.
    again = await _client(console_bus, settings, consoles.good).replay(
        PARTY, envelope.message_id, "bob"
    )
    _, refused = await _outcome(provider, again)
    assert refused.event is EventName.REPLAY_REFUSED
    assert refused.detail["code"] == "already-final"
    assert len(handled) == 1


async def test_a_broker_dead_letter_is_noted_once_and_replayed(
    make_node: MakeNode, settings: Settings, console_bus: Bus, consoles: Consoles
) -> None:
    """The node's census audits each broker dead letter once, with the broker's reason: what
    verifies with its ids, what does not by its digest alone; an admin then replays it."""
    sender, envelope, wire = await _sent_and_dead_lettered(make_node, settings, "KZN-CENSUS-1")
    await _dead_letter(settings, b"not an envelope")
    provider = await make_node(PARTY, replace(FAST, dead_letter_census=0.2))

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        return GRANTED

    async def both() -> list[AuditEvent] | None:
        noted = await audit_events(provider, EventName.BROKER_DEAD_LETTER)
        return noted if len(noted) >= 2 else None

    noted = await eventually(both, 15, "both dead letters noted")
    verified = next(e for e in noted if e.detail["verified"])
    unverified = next(e for e in noted if not e.detail["verified"])
    assert (verified.message_id, verified.case_id) == (envelope.message_id, "KZN-CENSUS-1")
    assert verified.detail["reason"] == "delivery_limit"
    assert verified.detail["sender"] == "single-center"
    assert verified.digest == digest(wire)
    assert unverified.message_id is None
    assert unverified.case_id is None
    assert unverified.digest == digest(b"not an envelope")
    assert unverified.detail["code"] == "malformed"
    await asyncio.sleep(1.0)  # several more censuses: each letter is noted once
    assert len(await audit_events(provider, EventName.BROKER_DEAD_LETTER)) == 2

    command_id = await _client(console_bus, settings, consoles.good).replay(
        PARTY, envelope.message_id, "alice"
    )
    _, outcome = await _outcome(provider, command_id)
    assert outcome.event is EventName.REPLAYED
    assert (await sender.wait_answer(envelope.message_id, timeout=15)).kind == "response"


async def test_replay_after_processing_failed_is_refused(
    make_node: MakeNode, settings: Settings, console_bus: Bus, consoles: Consoles
) -> None:
    """A request dead after the retry limit got processing-failed: final, never replayed."""
    provider = await make_node(PARTY)
    sender = await make_node("single-center")
    runs: list[str] = []

    @provider.handler("tree-felling-permit")
    async def broken(request: IncomingRequest) -> dict[str, Any]:
        runs.append(request.message_id)
        raise RuntimeError("the registry is down")

    request_id = await sender.request("tree-felling-permit", TREES)
    answer = await sender.wait_answer(request_id, timeout=15)
    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "processing-failed"
    await wait_event(provider, "dead", request_id)
    tried = len(runs)

    command_id = await _client(console_bus, settings, consoles.good).replay(
        PARTY, request_id, "alice"
    )
    asked, outcome = await _outcome(provider, command_id)
    assert asked.message_id == request_id
    assert outcome.event is EventName.REPLAY_REFUSED
    assert outcome.message_id == request_id
    assert outcome.detail["code"] == "already-final"
    assert f"--refile {request_id}" in outcome.detail["reason"]
    assert len(runs) == tried
    stored = await provider.ctx.store.get_inbox(request_id)
    assert stored is not None
    assert stored.state is InboxState.DEAD
    assert await audit_events(provider, "replayed") == []


async def test_replay_of_an_open_or_unknown_request_is_refused(
    make_node: MakeNode, settings: Settings, console_bus: Bus, consoles: Consoles
) -> None:
    """An open request is still its handler's (state-conflict); an unknown id has nothing."""
    provider = await make_node(PARTY)
    sender = await make_node("single-center")

    @provider.handler("tree-felling-permit")
    async def later(request: IncomingRequest) -> Later:
        return LATER  # the departmental system answers some day: open

    request_id = await sender.request("tree-felling-permit", TREES)
    await wait_event(provider, "handed-over", request_id)
    client = _client(console_bus, settings, consoles.good)
    _, open_outcome = await _outcome(provider, await client.replay(PARTY, request_id, "alice"))
    _, unknown = await _outcome(provider, await client.replay(PARTY, "no-such-id", "alice"))
    assert (open_outcome.event, open_outcome.detail["code"]) == (
        EventName.REPLAY_REFUSED,
        "state-conflict",
    )
    assert (unknown.event, unknown.detail["code"]) == (EventName.REPLAY_REFUSED, "unknown-message")
    stored = await provider.ctx.store.get_inbox(request_id)
    assert stored is not None
    assert stored.state is InboxState.WAITING


def _command(party: str = PARTY) -> AdminCommand:
    now = SYSTEM_CLOCK.now()
    return AdminCommand(
        command_id=f"forged-{now.timestamp()}",
        action=Action.REPLAY,
        party=party,
        message_id="m-1",
        actor="mallory",
        issued_at=now,
        expires_at=now + timedelta(minutes=5),
    )


def _tampered(raw: bytes) -> bytes:
    doc = json.loads(raw)
    payload = json.loads(b64url.decode(doc["payload"], "payload"))
    payload["message_id"] = "m-2"
    doc["payload"] = b64url.encode(json.dumps(payload).encode())
    return json.dumps(doc).encode()


BadCommand = Callable[[ThrowawayPKI, Consoles], bytes]
BAD: dict[str, tuple[BadCommand, str]] = {
    "signed-by-a-party": (
        lambda pki, c: seal_command(_command(), pki.credentials("single-center")),
        "command-forbidden",
    ),
    "signed-by-the-collector": (
        lambda pki, c: seal_command(_command(), pki.credentials("collector")),
        "command-forbidden",
    ),
    "tampered": (lambda pki, c: _tampered(seal_command(_command(), c.good)), "signature-invalid"),
    "expired-certificate": (
        lambda pki, c: seal_command(_command(), c.expired),
        "certificate-expired",
    ),
    "revoked-certificate": (
        lambda pki, c: seal_command(_command(), c.revoked),
        "certificate-revoked",
    ),
    "for-another-party": (
        lambda pki, c: seal_command(_command("single-center"), c.good),
        "wrong-recipient",
    ),
    "an-envelope": (
        lambda pki, c: seal(
            make_envelope(SYSTEM_CLOCK), pki.credentials("single-center"), WireFormat.JSON
        ),
        "wrong-document-type",
    ),
    "not-signed": (lambda pki, c: _command().payload(), "malformed"),
}


@pytest.mark.parametrize("case", list(BAD))
async def test_command_that_does_not_verify_is_quarantined(
    make_node: MakeNode,
    settings: Settings,
    console_bus: Bus,
    live_pki: ThrowawayPKI,
    consoles: Consoles,
    case: str,
) -> None:
    """A command not signed by a good console certificate for this party is quarantined with
    its code and audited; nothing is carried out."""
    make, code = BAD[case]
    provider = await make_node(PARTY)
    names = BusNames(settings.bus_prefix)
    raw = make(live_pki, consoles)
    await console_bus.publish(names.bus, names.admin(PARTY), raw, content_type=COMMAND_CONTENT_TYPE)

    async def refused() -> AuditEvent | None:
        return next(
            (
                e
                for e in await audit_events(provider, "quarantined")
                if e.detail.get("what") == "admin-command"
            ),
            None,
        )

    quarantined = await eventually(refused, 15, "the command quarantined")
    assert quarantined.detail["code"] == code
    assert await audit_events(provider, "admin-command") == []
    assert await audit_events(provider, "replayed") == []
    assert await audit_events(provider, "replay-refused") == []
    held = await _quarantine_queue(settings)
    assert (raw, f"quarantined:{PARTY}:{code}") in held


async def _quarantine_queue(settings: Settings) -> list[tuple[bytes, str | None]]:
    """The bodies and message types in the quarantine queue (left there)."""
    names = BusNames(settings.bus_prefix)
    found: list[tuple[bytes, str | None]] = []
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(names.quarantine)
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            found.append((message.body, message.type))
    return found


async def test_client_refuses_empty_fields(settings: Settings, consoles: Consoles) -> None:
    """AdminClient needs a party, a message id and an actor, and a ttl within a day."""
    with pytest.raises(ValueError, match="ttl"):
        AdminClient(Bus(AMQP_URL), BusNames(settings.bus_prefix), consoles.good, ttl=timedelta(0))
    client = AdminClient(Bus(AMQP_URL), BusNames(settings.bus_prefix), consoles.good)
    with pytest.raises(ValueError, match="empty"):
        await client.replay(PARTY, "m-1", "")


async def test_cli_sends_a_replay_command(
    make_node: MakeNode, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`exchange admin replay PARTY ID` signs as the console; the node audits who asked."""
    provider = await make_node(PARTY)
    for name, value in exchange_env(settings).items():
        if name.startswith("EXCHANGE_"):
            monkeypatch.setenv(name, value)
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["admin", "replay", PARTY, "no-such-request", "--actor", "carol", "--json"],
    )
    assert result.exit_code == 0, result.output
    command_id = json.loads(result.stdout)["command_id"]
    asked, outcome = await _outcome(provider, command_id)
    assert (asked.detail["actor"], asked.detail["console"]) == ("carol", "console")
    assert (outcome.event, outcome.detail["code"]) == (EventName.REPLAY_REFUSED, "unknown-message")


async def test_a_command_is_carried_out_once(make_node: MakeNode, consoles: Consoles) -> None:
    """The same command again (a redelivery, another process) changes nothing."""
    provider = await make_node(PARTY)
    raw = seal_command(_command(), consoles.good)
    verified = open_command(
        raw, provider.ctx.trust, provider.ctx.catalog.data, PARTY, SYSTEM_CLOCK.now()
    )
    first = await provider.admin.carry_out(verified)
    again = await provider.admin.carry_out(verified)
    assert first is again is EventName.REPLAY_REFUSED
    assert len(await audit_events(provider, "admin-command")) == 1
    assert len(await audit_events(provider, "replay-refused")) == 1
