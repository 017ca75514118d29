"""Signed admin commands: what opens, and every way one is refused, each with its code."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from exchange._clock import FrozenClock
from exchange.admin import Action, AdminCommand, open_command, seal_command
from exchange.audit.ack import HeadAck, seal_ack
from exchange.catalog import CatalogData, read_catalog_data
from exchange.codec import b64url
from exchange.exceptions import ExchangeError
from exchange.signing import WireFormat, seal
from exchange.signing.jws.profile import ADMIN_COMMAND_TYPE, CONTENT_TYPES
from exchange.signing.jws.signer import sign_document
from exchange.testing import ThrowawayPKI, make_envelope
from tests.bus.conftest import BUS_PARTIES, DATA

PARTY = "improvement"


@pytest.fixture
def clock() -> FrozenClock:
    """The PKI's and the node's time."""
    return FrozenClock()


@pytest.fixture
def pki(tmp_path: Path, clock: FrozenClock) -> ThrowawayPKI:
    """A PKI with the departments, the collector and the console."""
    return ThrowawayPKI.create(
        tmp_path / "pki", BUS_PARTIES, clock, infrastructure=("collector", "console")
    )


@pytest.fixture
def catalog() -> CatalogData:
    """The test catalog (console and collector are infrastructure)."""
    return read_catalog_data(DATA / "catalog.toml")


def command(clock: FrozenClock, **fields: object) -> AdminCommand:
    """A replay command for improvement, valid for 15 minutes from now."""
    now = clock.now()
    values: dict[str, object] = {
        "command_id": "c-1",
        "action": Action.REPLAY,
        "party": PARTY,
        "message_id": "m-1",
        "actor": "alice",
        "issued_at": now,
        "expires_at": now + timedelta(minutes=15),
    }
    values.update(fields)
    return AdminCommand(**values)  # type: ignore[arg-type]


def _open(raw: bytes, pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock) -> str:
    """The code ``open_command`` refuses ``raw`` with."""
    with pytest.raises(ExchangeError) as info:
        open_command(raw, pki.trust(), catalog, PARTY, clock.now())
    return info.value.code


def test_a_console_command_opens(
    pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock
) -> None:
    """A command signed by the console for this party opens as it was signed."""
    sent = command(clock)
    verified = open_command(
        seal_command(sent, pki.credentials("console")), pki.trust(), catalog, PARTY, clock.now()
    )
    assert verified.command == sent
    assert verified.signer.party == "console"


@pytest.mark.parametrize("signer", ["single-center", "improvement", "collector"])
def test_only_the_console_may_command(
    pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock, signer: str
) -> None:
    """A command signed by a department or the collector is command-forbidden."""
    raw = seal_command(command(clock), pki.credentials(signer))
    assert _open(raw, pki, catalog, clock) == "command-forbidden"


def _tamper_payload(raw: bytes) -> bytes:
    doc = json.loads(raw)
    payload = json.loads(b64url.decode(doc["payload"], "payload"))
    payload["message_id"] = "m-2"
    doc["payload"] = b64url.encode(json.dumps(payload, sort_keys=True).encode())
    return json.dumps(doc).encode()


def _tamper_signature(raw: bytes) -> bytes:
    doc = json.loads(raw)
    signature = bytearray(b64url.decode(doc["signature"], "signature"))
    signature[5] ^= 1
    doc["signature"] = b64url.encode(bytes(signature))
    return json.dumps(doc).encode()


@pytest.mark.parametrize("tamper", [_tamper_payload, _tamper_signature])
def test_tampered_command(
    pki: ThrowawayPKI,
    catalog: CatalogData,
    clock: FrozenClock,
    tamper: Callable[[bytes], bytes],
) -> None:
    """A changed payload or signature is signature-invalid."""
    raw = tamper(seal_command(command(clock), pki.credentials("console")))
    assert _open(raw, pki, catalog, clock) == "signature-invalid"


def test_expired_console_certificate(
    pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock
) -> None:
    """Once the console's certificate has ended, its commands are refused, even fresh ones."""
    credentials = pki.credentials("console")
    clock.advance(timedelta(days=400))
    raw = seal_command(command(clock), credentials)
    assert _open(raw, pki, catalog, clock) == "certificate-expired"


def test_revoked_console_certificate(
    pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock
) -> None:
    """A command signed before the console's certificate was revoked is refused after it."""
    raw = seal_command(command(clock), pki.credentials("console"))
    clock.advance(timedelta(minutes=1))
    pki.authority.revoke("console")
    clock.advance(timedelta(minutes=1))
    assert _open(raw, pki, catalog, clock) == "certificate-revoked"


@pytest.mark.parametrize(
    ("fields", "later"),
    [
        ({}, timedelta(minutes=16)),  # expired on arrival
        ({"expires_at": FrozenClock().now() - timedelta(seconds=1)}, timedelta(0)),
        ({"issued_at": FrozenClock().now() + timedelta(hours=1)}, timedelta(0)),  # future
        ({"expires_at": FrozenClock().now() + timedelta(days=2)}, timedelta(0)),  # too long
    ],
    ids=["expired", "expired-when-signed", "issued-in-future", "valid-too-long"],
)
def test_command_outside_its_validity(
    pki: ThrowawayPKI,
    catalog: CatalogData,
    clock: FrozenClock,
    fields: dict[str, object],
    later: timedelta,
) -> None:
    """A command is good only inside its short validity window: else expired."""
    raw = seal_command(command(clock, **fields), pki.credentials("console"))
    clock.advance(later)
    assert _open(raw, pki, catalog, clock) == "expired"


def test_command_for_another_party(
    pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock
) -> None:
    """A command for single-center, delivered to improvement, is wrong-recipient."""
    raw = seal_command(command(clock, party="single-center"), pki.credentials("console"))
    assert _open(raw, pki, catalog, clock) == "wrong-recipient"


def test_other_signed_documents_are_not_commands(
    pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock
) -> None:
    """An envelope or a head acknowledgment is no command, whoever signed it."""
    console = pki.credentials("console")
    envelope = seal(make_envelope(clock), pki.credentials("single-center"), WireFormat.JSON)
    ack = seal_ack(HeadAck(PARTY, 1, "0" * 64, clock.now(), 1), console)
    assert _open(envelope, pki, catalog, clock) == "wrong-document-type"
    assert _open(ack, pki, catalog, clock) == "wrong-document-type"


@pytest.mark.parametrize(
    "change",
    [
        {"action": "delete"},
        {"version": 2},
        {"actor": ""},
        {"issued_at": "yesterday"},
        {"expires_at": "2026-01-15T09:15:00"},  # no time zone
    ],
    ids=["action", "version", "actor", "time", "naive-time"],
)
def test_malformed_command(
    pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock, change: dict[str, object]
) -> None:
    """A signed payload that is not a version-1 command is malformed."""
    doc = json.loads(command(clock).payload())
    doc.update(change)
    raw = sign_document(
        json.dumps(doc).encode(),
        pki.credentials("console"),
        ADMIN_COMMAND_TYPE,
        CONTENT_TYPES[ADMIN_COMMAND_TYPE],
    )
    assert _open(raw, pki, catalog, clock) == "malformed"


@pytest.mark.parametrize("raw", [b"", b"not json", base64.b64encode(b"{}")])
def test_not_a_jws(pki: ThrowawayPKI, catalog: CatalogData, clock: FrozenClock, raw: bytes) -> None:
    """Bytes that are not a JWS at all are malformed."""
    assert _open(raw, pki, catalog, clock) == "malformed"
