"""The five citizen services end to end through the adapters' simulated systems, on the real bus.

Every party's node runs with the adapter the catalog names (its ``system.register``); the Single
Center files the example applications in XML and in JSON; the providers decide by their
rules, asking other departments where they need their data.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.architecture import rules as architecture
from adapters.improvement import rules as improvement
from adapters.land_property.rules import plot_info
from adapters.urban_permits import rules as urban_permits
from exchange._clock import SYSTEM_CLOCK
from exchange._ids import new_message_id
from exchange.audit.central import SQLiteCentralStore
from exchange.audit.collector import Collector
from exchange.audit.trace import trace
from exchange.catalog import Catalog
from exchange.config import Settings
from exchange.envelope.model import Envelope, Kind, ServiceRef
from exchange.exceptions import AccessDenied
from exchange.node import IncomingRequest, Node, Reply, build_node
from exchange.node.notices import Notice
from exchange.pki.trust import TrustStore
from exchange.signing import WireFormat, seal
from exchange.signing.stored import decode_stored
from exchange.testing import ThrowawayPKI
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.adapters.conftest import City
from tests.bus.helpers import audit_events, eventually
from tests.catalog._city import example

pytestmark = pytest.mark.rabbit

FORMATS = [WireFormat.XML, WireFormat.JSON]
CITIZEN_SERVICES = [
    "architectural-appearance",
    "signage-project",
    "excavation-permit",
    "tree-felling-permit",
    "stormwater-conditions",
]


def application(service: str) -> dict[str, Any]:
    """The service's example request, its dates moved into the future where they matter."""
    payload = example(service, Kind.REQUEST)
    if service == "excavation-permit":
        start = SYSTEM_CLOCK.now().date() + timedelta(days=10)
        payload["start_date"] = start.isoformat()
        payload["end_date"] = (start + timedelta(days=14)).isoformat()
        payload["restoration_date"] = (start + timedelta(days=24)).isoformat()
    return payload


def expected(service: str, payload: dict[str, Any], request_id: str, today: date) -> dict[str, Any]:
    """What the provider's rules decide on ``payload`` (with the data other departments hold)."""
    if service == "tree-felling-permit":
        plot = plot_info(payload["cadastral_number"])
        return improvement.tree_felling(payload, plot, request_id, today)
    if service == "stormwater-conditions":
        return improvement.stormwater(payload, "K-17 on pr. Pobedy", request_id, today)
    if service == "architectural-appearance":
        extract = urban_permits.plan_extract(payload["object"]["cadastral_number"])
        return architecture.appearance(payload, extract, request_id, today)
    if service == "signage-project":
        return architecture.signage(payload, request_id, today)
    return urban_permits.excavation(payload, request_id, today)


async def file(
    city: City, service: str, payload: dict[str, Any], wire_format: WireFormat, case_id: str
) -> tuple[str, Notice]:
    """File an application at the Single Center; return its request id and final answer."""
    front = city["single-center"]
    request_id = await front.request(service, payload, case_id=case_id, wire_format=wire_format)
    return request_id, await front.wait_answer(request_id, timeout=20)


@pytest.mark.parametrize("wire_format", FORMATS)
@pytest.mark.parametrize("service", CITIZEN_SERVICES)
async def test_citizen_service_end_to_end(
    city: City, service: str, wire_format: WireFormat
) -> None:
    """The provider answers the example application with exactly what its rules decide."""
    payload = application(service)
    request_id, answer = await file(city, service, payload, wire_format, f"KZN-T-{service}")
    assert answer.kind == "response"
    assert answer.envelope is not None
    today = SYSTEM_CLOCK.now().date()
    assert answer.envelope.payload == expected(service, payload, request_id, today)
    decision = {
        "architectural-appearance": "approved",
        "signage-project": "refused",  # the example's fascia sign covers a heritage cornice
        "excavation-permit": "issued",
        "tree-felling-permit": "granted",
        "stormwater-conditions": "issued",
    }[service]
    assert answer.envelope.payload["decision"] == decision


@pytest.mark.parametrize("wire_format", FORMATS)
async def test_departments_ask_each_other_for_data(city: City, wire_format: WireFormat) -> None:
    """Land-plot-info and urban-plan-extract answer from the registers, found or not."""
    cases = [
        (city["improvement"], "land-plot-info", "16:50:011302:45", plot_info),
        (city["architecture"], "urban-plan-extract", "16:50:050101:77", urban_permits.plan_extract),
        (city["improvement"], "land-plot-info", "16:50:999901:1", plot_info),
    ]
    for asker, service, number, register in cases:
        asked = await asker.request(service, {"cadastral_number": number}, wire_format=wire_format)
        answer = await asker.wait_answer(asked, timeout=20)
        assert answer.kind == "response"
        assert answer.envelope is not None
        assert answer.envelope.payload == register(number)


async def test_unknown_plot_is_refused_and_bad_dates_are_a_fault(city: City) -> None:
    """A plot no register knows gets a refusal; contradictory dates get a signed fault."""
    trees = application("tree-felling-permit") | {"cadastral_number": "16:50:999901:1"}
    _, answer = await file(city, "tree-felling-permit", trees, WireFormat.XML, "KZN-T-R1")
    assert answer.envelope is not None
    assert answer.envelope.payload is not None
    assert answer.envelope.payload["decision"] == "refused"
    assert "not in the land register" in str(answer.envelope.payload["refusal_reasons"])

    digging = application("excavation-permit")
    digging["end_date"] = "2020-01-01"
    _, answer = await file(city, "excavation-permit", digging, WireFormat.JSON, "KZN-T-R2")
    assert answer.kind == "fault"
    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "invalid-content"


async def test_a_run_again_after_a_failure_asks_no_second_question(
    city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run dies after asking Land and Property; the retry waits on the same question."""
    decide = improvement.tree_felling
    runs: list[int] = []

    def dies_once(*args: Any) -> dict[str, Any]:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("the committee's system crashed")
        return decide(*args)

    monkeypatch.setattr(improvement, "tree_felling", dies_once)
    request_id, answer = await file(
        city, "tree-felling-permit", application("tree-felling-permit"), WireFormat.XML, "KZN-T-C"
    )
    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload is not None
    assert answer.envelope.payload["decision"] == "granted"
    assert len(runs) == 2
    provider = city["improvement"]
    retried = [e for e in await audit_events(provider, "retried") if e.message_id == request_id]
    asked = [
        e
        for e in await audit_events(provider, "created")
        if e.service == "land-plot-info" and e.case_id == "KZN-T-C"
    ]
    statuses = [e for e in await audit_events(provider, "status-sent") if e.case_id == "KZN-T-C"]
    assert len(retried) == 1
    assert len(asked) == 1
    assert len(statuses) == 1


async def test_a_handler_run_again_gives_the_same_decision(city: City) -> None:
    """Running the handler again on an answered request returns the recorded decision."""
    request_id, answer = await file(
        city, "tree-felling-permit", application("tree-felling-permit"), WireFormat.JSON, "KZN-T-I"
    )
    provider = city["improvement"]
    record = await provider.ctx.store.get_inbox(request_id)
    assert record is not None
    assert answer.envelope is not None
    again = IncomingRequest(provider.ctx.catalog.typed(decode_stored(record.wire)), attempt=2)
    result = await provider.handlers["tree-felling-permit"](again)
    if isinstance(result, Reply):  # a granted permit comes with its PDF
        assert [a.name for a in answer.envelope.attachments] == ["permit.pdf"]
        result = result.payload
    assert result == answer.envelope.payload
    asked = [
        e
        for e in await audit_events(provider, "created")
        if e.service == "land-plot-info" and e.case_id == "KZN-T-I"
    ]
    assert len(asked) == 1


async def _caught_up(central: SQLiteCentralStore, nodes: list[Node]) -> bool:
    for node in nodes:
        records = await node.ctx.store.audit(limit=1_000_000)
        if not records:
            continue  # a department this case did not reach
        head = await central.head(node.party)
        if head is None or head[0] < records[-1].seq:
            return False
    return True


async def test_tree_felling_crosses_three_departments_in_order(
    city: City, city_settings: Settings
) -> None:
    """The collector's trace of the case shows every step of the three departments in order."""
    names = BusNames(city_settings.bus_prefix)
    central = SQLiteCentralStore(city_settings.store_dir / "central.db")
    trust = TrustStore.from_dir(city_settings.certs_dir)
    collector = Collector(Bus(city_settings.amqp_url), names, central, trust, SYSTEM_CLOCK)
    await collector.start()
    try:
        request_id, answer = await file(
            city,
            "tree-felling-permit",
            application("tree-felling-permit"),
            WireFormat.XML,
            "KZN-T-3D",
        )
        assert answer.kind == "response"
        await eventually(
            lambda: _caught_up(central, list(city.values())),
            timeout=15,
            what="the collector to hold every chain",
        )
        timeline = await trace(central, "KZN-T-3D", SYSTEM_CLOCK.now())
    finally:
        await collector.stop()
    steps = [(r.party, str(r.event.event), r.event.service) for r in timeline.steps]
    assert {party for party, _, _ in steps} == {"single-center", "improvement", "land-property"}
    tree, plot = "tree-felling-permit", "land-plot-info"
    in_order = [
        ("single-center", "created", tree),
        ("improvement", "received", tree),
        ("improvement", "status-sent", tree),
        ("improvement", "created", plot),
        ("land-property", "received", plot),
        ("land-property", "responded", plot),
        ("improvement", "response-received", plot),
        ("improvement", "responded", tree),
        ("single-center", "response-received", tree),
    ]
    positions = [steps.index(step) for step in in_order]
    assert positions == sorted(positions), steps
    assert ("single-center", "receipt-received", tree) in steps
    assert ("improvement", "receipt-received", plot) in steps
    waits = timeline.waiting_by_party()
    assert set(waits) == {"improvement", "land-property"}
    assert waits["improvement"] > waits["land-property"] > 0
    assert request_id in {r.event.message_id for r in timeline.steps}


async def test_exchange_node_run_serves_an_adapter(
    city_settings: Settings, city_catalog: Catalog, tmp_path: Path
) -> None:
    """``exchange node run land-property`` loads the catalog's adapter, answers from another cwd."""
    env = {
        **os.environ,
        "EXCHANGE_CERTS_DIR": str(city_settings.certs_dir),
        "EXCHANGE_CATALOG": str(city_settings.catalog),
        "EXCHANGE_SCHEMAS_DIR": str(city_settings.schemas_dir),
        "EXCHANGE_BUS_PREFIX": city_settings.bus_prefix,
        "EXCHANGE_STORE_DIR": str(tmp_path / "process-stores"),
        "EXCHANGE_AMQP_URL": city_settings.amqp_url,
    }
    env.pop("EXCHANGE_STORE_DSN", None)
    command = ["node", "run", "land-property"]
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=tmp_path,
    )
    asker = build_node("improvement", city_settings, catalog=city_catalog)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        assert line.strip() == b"ready land-property"
        async with asker:
            asked = await asker.request("land-plot-info", {"cadastral_number": "16:50:011302:45"})
            answer = await asker.wait_answer(asked, timeout=20)
        assert answer.kind == "response"
        assert answer.envelope is not None
        assert answer.envelope.payload == plot_info("16:50:011302:45")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(30)


async def test_a_party_that_may_not_call_a_service_is_refused(
    city: City, city_pki: ThrowawayPKI, city_settings: Settings
) -> None:
    """A party outside a service's callers is refused locally, and by the provider if forced."""
    intruder = city["land-property"]
    with pytest.raises(AccessDenied) as info:
        await intruder.request("tree-felling-permit", application("tree-felling-permit"))
    assert info.value.code == "access-denied"

    # Forced past the local check: signed by land-property, put straight on the bus.
    now = SYSTEM_CLOCK.now()
    forced = Envelope(
        message_id=new_message_id(),
        kind=Kind.REQUEST,
        service=ServiceRef(code="tree-felling-permit", version="1"),
        sender="land-property",
        recipient="improvement",
        created_at=now,
        expires_at=now + timedelta(hours=1),
        case_id="KZN-FORCED-1",
        payload=application("tree-felling-permit"),
    )
    wire = seal(forced, city_pki.credentials("land-property"), WireFormat.JSON)
    await city["land-property"].ctx.bus.publish(
        BusNames(city_settings.bus_prefix).bus,
        "improvement",
        wire,
        content_type="application/json",
        message_type="request",
    )
    provider = city["improvement"]

    async def refused() -> bool:
        record = await provider.ctx.store.get_inbox(forced.message_id)
        return record is not None and record.state.value == "rejected"

    await eventually(refused, timeout=10)
    rejected = [
        e
        for e in await provider.ctx.store.audit()
        if e.event.event == "rejected" and e.event.message_id == forced.message_id
    ]
    assert [e.event.detail["code"] for e in rejected] == ["access-denied"]
