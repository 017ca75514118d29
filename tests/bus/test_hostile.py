"""Inputs that once crashed the verifier, sent to a live node over the real broker.

Each ends in quarantine on its first delivery (never requeued), with an audit record, and
the node keeps answering valid requests meanwhile (issue 12).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

import exchange.signing as signing
from exchange.config import Settings
from exchange.ledger import EventName
from exchange.ledger.event import AuditEvent
from exchange.signing import VerifiedEnvelope
from exchange.signing._boundary import unexpected_count
from exchange.signing.jws.verifier import verify_jws as real_verify_jws
from exchange.testing import ThrowawayPKI
from exchange.transport.names import BusNames
from tests.bus.conftest import MakeNode
from tests.bus.helpers import RawBus, audit_events, eventually
from tests.bus.test_bad_traffic import SMALL, assert_still_serves, now_envelope, provider_counting
from tests.signing.fuzz._material import Material, material_of
from tests.signing.fuzz._mutations import Header, KeyInfo, X5c, XmlAttribute

pytestmark = pytest.mark.rabbit

Mutation = Header | KeyInfo | X5c | XmlAttribute

# Namespace URIs canonicalisation cannot use are refused before it runs (feat/xmlverify).
C14N_REFUSED = frozenset({"malformed"})

CASES: list[tuple[str, Mutation, frozenset[str]]] = [
    # A JWS protected header whose members have the wrong JSON type.
    ("alg-list", Header("alg", ["ES256"]), frozenset({"unsupported-algorithm"})),
    ("typ-object", Header("typ", {"a": 1}), frozenset({"wrong-document-type"})),
    ("x5c-nested", Header("x5c", [["MIIB"]]), frozenset({"signature-invalid"})),
    # A certificate whose public key algorithm the profile does not know, in x5c and KeyInfo.
    ("x5c-unknown-key", X5c(("cert:unknown-key-algorithm",)), frozenset({"unsupported-algorithm"})),
    (
        "keyinfo-unknown-key",
        KeyInfo(("cert:unknown-key-algorithm",)),
        frozenset({"unsupported-algorithm"}),
    ),
    (
        "x5c-duplicate-extension",
        X5c(("cert:duplicate-extension",)),
        frozenset({"certificate-unknown"}),
    ),
    # Namespace URIs canonicalisation refuses: on the root, in SignedInfo, in the payload.
    ("ns-root", XmlAttribute("root", "xmlns:p", "rel"), C14N_REFUSED),
    ("ns-signed-info", XmlAttribute("signed-info", "xmlns:p", "rel"), C14N_REFUSED),
    ("ns-payload", XmlAttribute("payload", "xmlns:p", "../up"), C14N_REFUSED),
]


@pytest.fixture
def live_material(live_pki: ThrowawayPKI) -> Material:
    """Valid envelopes of this moment, signed by single-center, and broken certificates."""
    return material_of(live_pki, now_envelope())


@pytest.fixture
async def raw_bus(settings: Settings) -> AsyncIterator[RawBus]:
    """A plain aio-pika client on this session's bus exchange."""
    client = await RawBus.connect(BusNames(settings.bus_prefix).bus)
    yield client
    await client.close()


async def _quarantined_once(make_node: MakeNode, raw_bus: RawBus, raw: bytes) -> dict[str, object]:
    """Send ``raw`` to a live provider; return its one quarantine record's detail.

    The provider answers a valid request sent after it: by then the hostile delivery was
    handled, and a requeue would have shown as a second record or none.
    """
    provider, calls = await provider_counting(make_node, SMALL)
    sender = await make_node("single-center")
    digest = hashlib.sha256(raw).hexdigest()
    await raw_bus.publish("improvement", raw)

    async def recorded() -> list[AuditEvent]:
        events = await audit_events(provider, EventName.QUARANTINED)
        return [event for event in events if event.digest == digest]

    await eventually(recorded, 10, "the quarantine record")
    await assert_still_serves(sender, calls)
    [event] = await recorded()
    assert EventName.FAULT_SENT not in [e.event for e in await audit_events(provider)]
    return dict(event.detail)


@pytest.mark.parametrize(
    ("mutation", "codes"),
    [(mutation, codes) for _, mutation, codes in CASES],
    ids=[name for name, _, _ in CASES],
)
async def test_crashing_input_is_quarantined_on_first_delivery(
    make_node: MakeNode,
    raw_bus: RawBus,
    live_material: Material,
    mutation: Mutation,
    codes: frozenset[str],
) -> None:
    """Each class of input that crashed the verifier is quarantined once, with a record."""
    raw = mutation.apply(live_material)
    detail = await _quarantined_once(make_node, raw_bus, raw)
    assert detail["code"] in codes
    assert detail["size"] == len(raw)


async def test_unexpected_exception_is_quarantined_and_counted(
    make_node: MakeNode,
    raw_bus: RawBus,
    live_material: Material,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever verification raises unexpectedly is quarantined (verify-failed) and counted."""
    poisoned = live_material.jws.replace(b'"protected"', b' "protected"', 1)

    def verify_jws(raw: bytes, *args: Any, **kwargs: Any) -> VerifiedEnvelope:
        if raw == poisoned:
            raise RecursionError("stands in for a bug deep in a parser")
        return real_verify_jws(raw, *args, **kwargs)

    monkeypatch.setattr(signing, "verify_jws", verify_jws)
    before = unexpected_count()
    with structlog.testing.capture_logs() as logs:
        detail = await _quarantined_once(make_node, raw_bus, poisoned)
    assert detail["code"] == "verify-failed"
    assert unexpected_count() == before + 1
    assert [e["exc_type"] for e in logs if e["event"] == "verify.unexpected"] == ["RecursionError"]
    assert not [e for e in logs if e["event"] == "inbound.requeued"]
