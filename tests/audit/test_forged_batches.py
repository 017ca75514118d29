"""Only a party can write its own audit trail, over the real broker.

A foreign AMQP client publishes to the audit routing key on the bus exchange: an unsigned
batch claiming improvement's next 500 records, a batch signed by another party, and one
signed by improvement's key that rewrites seqs the collector already holds. None enters the
log; each is kept in the audit quarantine with a finding; the genuine records that follow
are all stored, and a trace shows every party's steps.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import aio_pika
import pytest
from typer.testing import CliRunner

from exchange._clock import SYSTEM_CLOCK
from exchange.audit.ack import open_ack
from exchange.audit.batch import Batch, seal_batch
from exchange.audit.central import CentralStore
from exchange.audit.central.postgres import PostgresCentralStore
from exchange.audit.central.sqlite import SQLiteCentralStore
from exchange.audit.collector import Collector
from exchange.audit.trace import trace
from exchange.audit.verify import verify_central
from exchange.cli import app
from exchange.config import Settings
from exchange.ledger.chain import link
from exchange.ledger.codec import record_to_json
from exchange.ledger.event import AuditEvent, AuditRecord, EventName
from exchange.pki.trust import TrustStore
from exchange.testing import ThrowawayPKI
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.audit._live import caught_up, local_records, run_case, three_nodes, until
from tests.bus.conftest import AMQP_URL, BUS_PARTIES
from tests.postgres import DSN

pytestmark = pytest.mark.rabbit

VICTIM = "improvement"


def _unsigned(head: int) -> bytes:
    """The old, unsigned batch format, claiming the victim's next 500 records."""
    at = SYSTEM_CLOCK.now()
    records, prev = [], "f" * 64
    for seq in range(head + 1, head + 501):
        record = link(seq, at, VICTIM, AuditEvent(EventName.IGNORED, detail={"x": seq}), prev)
        records.append(record_to_json(record))
        prev = record.hash
    doc = {"version": 1, "party": VICTIM, "records": records, "checkpoints": []}
    return json.dumps(doc).encode()


def _rewritten(pki: ThrowawayPKI, signer: str, seqs: range) -> bytes:
    """A batch of the victim's first ``seqs`` with other content, signed by ``signer``."""
    at = SYSTEM_CLOCK.now() - timedelta(seconds=1)
    records, prev = [], "0" * 64
    for seq in range(1, seqs.stop):
        event = AuditEvent(EventName.CANCELLED, message_id=f"forged-{seq}", case_id="KZN-FORGED")
        records.append(link(seq, at, VICTIM, event, prev))
        prev = records[-1].hash
    batch = Batch(VICTIM, [r for r in records if r.seq in seqs], [])
    return seal_batch(batch, pki.credentials(signer), SYSTEM_CLOCK.now())


async def _publish_as_stranger(names: BusNames, bodies: list[bytes]) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        bus = await channel.get_exchange(names.bus, ensure=False)
        for body in bodies:
            await bus.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=names.audit,
                timeout=10,
            )


async def _quarantined(names: BusNames) -> list[tuple[str, bytes]]:
    connection = await aio_pika.connect(AMQP_URL)
    found: list[tuple[str, bytes]] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(names.audit_quarantine, ensure=False)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append((str(message.type), message.body))
    return found


def _verify_cli(central: CentralStore, settings: Settings) -> tuple[int, list[dict[str, object]]]:
    env = {"EXCHANGE_CERTS_DIR": str(settings.certs_dir), "EXCHANGE_CATALOG": str(settings.catalog)}
    if isinstance(central, PostgresCentralStore):
        env |= {"EXCHANGE_AUDIT_DSN": DSN, "EXCHANGE_AUDIT_SCHEMA_NAME": central.schema}
    else:
        assert isinstance(central, SQLiteCentralStore)
        env |= {"EXCHANGE_AUDIT_PATH": str(central.path)}
    result = CliRunner().invoke(app, ["audit", "verify", "--json"], env=env)
    assert result.stdout, result.output
    return result.exit_code, json.loads(result.stdout)


async def test_foreign_batches_never_enter_the_log(
    settings: Settings, central: CentralStore, audit_pki: ThrowawayPKI
) -> None:
    """Unsigned, mis-signed and rewriting batches are refused; the genuine ones all arrive."""
    names = BusNames(settings.bus_prefix)
    collector = Collector(
        Bus(AMQP_URL), names, central, TrustStore.from_dir(settings.certs_dir), SYSTEM_CLOCK
    )
    await collector.start()
    nodes = three_nodes(settings)
    try:
        for node in nodes.values():
            await node.start()
        try:
            await run_case(nodes["single-center"], "KZN-F-1")

            async def victim_shipped() -> bool:
                head = await central.head(VICTIM)
                return head is not None and head[0] >= 3

            await until(victim_shipped, what="the victim's first records at the collector")
            head = await central.head(VICTIM)
            assert head is not None
            await _publish_as_stranger(
                names,
                [
                    _unsigned(head[0]),
                    _rewritten(audit_pki, "single-center", range(1, 4)),
                    _rewritten(audit_pki, VICTIM, range(1, 4)),
                ],
            )

            async def three_findings() -> bool:
                kinds = {f.kind for f in await central.findings(VICTIM)}
                return {"malformed", "sender-mismatch", "audit-conflict"} <= kinds

            await until(three_findings, what="the collector's findings on the forged batches")
            await run_case(nodes["single-center"], "KZN-F-2")
        finally:
            for node in nodes.values():
                await node.stop()
        local = await local_records(settings)
        await until(lambda: caught_up(central, local), what="every genuine record stored")
    finally:
        await collector.stop()
    await central.open()  # the collector closed it
    try:
        await _check_outcome(central, settings, names, local)
    finally:
        await central.close()


async def _check_outcome(
    central: CentralStore,
    settings: Settings,
    names: BusNames,
    local: dict[str, list[AuditRecord]],
) -> None:
    for party, records in local.items():  # every genuine record, nothing else
        assert list(await central.records(party, limit=1_000_000)) == records
    conflicts = await central.conflicts(VICTIM)
    assert [r.seq for r in conflicts] == [1, 2, 3]
    assert {r.event.case_id for r in conflicts} == {"KZN-FORGED"}
    codes = sorted(kind.removeprefix("audit-refused:") for kind, _ in await _quarantined(names))
    assert codes == ["audit-conflict", "malformed", "sender-mismatch"]

    timeline = await trace(central, "KZN-F-2", SYSTEM_CLOCK.now())
    assert {r.party for r in timeline.steps} == set(BUS_PARTIES)
    assert ("improvement", "received") in [(r.party, str(r.event.event)) for r in timeline.steps]

    code, reports = await asyncio.to_thread(_verify_cli, central, settings)  # it runs a loop
    assert code == 1
    by_party = {r["party"]: r for r in reports}
    victim = by_party[VICTIM]
    assert victim["first_problem"] == {
        "code": "audit-conflict",
        "seq": 1,
        "message": victim["first_problem"]["message"],  # type: ignore[index]
    }
    assert VICTIM in str(victim["first_problem"])
    assert all(by_party[p]["ok"] for p in BUS_PARTIES if p != VICTIM)


async def test_each_accepted_batch_is_acknowledged_to_its_party(
    settings: Settings, central: CentralStore, audit_pki: ThrowawayPKI
) -> None:
    """The collector signs the head it holds; each party's node keeps it; its chain agrees."""
    names = BusNames(settings.bus_prefix)
    trust = TrustStore.from_dir(settings.certs_dir)
    collector = Collector(
        Bus(AMQP_URL), names, central, trust, SYSTEM_CLOCK, audit_pki.credentials("collector")
    )
    await collector.start()
    nodes = three_nodes(settings)
    try:
        for node in nodes.values():
            await node.start()
        try:
            await run_case(nodes["single-center"], "KZN-ACK-1")

            async def acknowledged() -> bool:
                for node in nodes.values():
                    held = await node.ctx.store.acks(limit=1_000_000)
                    head = await node.ctx.store.audit_head()
                    if not held or head is None or held[-1][0] != head[0]:
                        return False
                return True

            await until(acknowledged, what="every party to hold an acknowledgment of its head")
            for party, node in nodes.items():
                seq, body = (await node.ctx.store.acks(limit=1_000_000))[-1]
                ack = open_ack(body, trust, "collector", party)
                assert ack.seq == seq
                assert (ack.seq, ack.hash) == await node.ctx.store.audit_head()
            reports = await verify_central(central, trust, list(BUS_PARTIES), "collector")
            assert all(r.ok for r in reports), [r.problems for r in reports]
            own = await central.records("collector")
            assert own
            assert {r.event.event for r in own} == {EventName.HEAD_ACKNOWLEDGED}
        finally:
            for node in nodes.values():
                await node.stop()
    finally:
        await collector.stop()
