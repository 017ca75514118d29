"""The collector's envelope archive: wire bytes beside the audit records, by signed digest.

After a real exchange over the broker the collector holds the envelopes of the fully
archived service (verifiable with ``unseal``, the code path of ``exchange verify``) and none
of the digest-only one. Bytes that do not hash to their digest, or that no record of the
batch names, are refused with a finding; bytes changed in the store after they were
archived are refused on the way out. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from exchange._clock import SYSTEM_CLOCK, FrozenClock
from exchange.audit.batch import Batch
from exchange.audit.central import CentralStore
from exchange.audit.central.postgres import PostgresCentralStore
from exchange.audit.central.sqlite import SQLiteCentralStore
from exchange.audit.collector import Collector
from exchange.catalog import ArchiveMode, read_catalog_data
from exchange.cli import app
from exchange.config import Settings
from exchange.envelope.model import ServiceRef
from exchange.exceptions import ArchiveMismatch
from exchange.ledger.chain import GENESIS_HASH, link
from exchange.ledger.event import AuditEvent, AuditRecord, EventName
from exchange.pki.trust import TrustStore
from exchange.signing import WireFormat, digest, seal, unseal
from exchange.testing import ThrowawayPKI, exchange_env, make_envelope
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.audit._live import caught_up, local_records, run_case, three_nodes, until
from tests.bus.conftest import AMQP_URL, DATA
from tests.postgres import DSN

FULL_SERVICE = "tree-felling-permit"
DIGEST_SERVICE = "land-plot-info"  # archive = "digest" in tests/data/catalog.toml


@pytest.mark.rabbit
async def test_archived_after_a_real_exchange(
    settings: Settings, central: CentralStore, tmp_path: Path
) -> None:
    """Every envelope of the full service is archived and verifies; the digest-only keeps none."""
    names = BusNames(settings.bus_prefix)
    trust = TrustStore.from_dir(settings.certs_dir)
    catalog = read_catalog_data(settings.catalog)
    assert catalog.archive_mode(DIGEST_SERVICE) is ArchiveMode.DIGEST
    collector = Collector(
        Bus(AMQP_URL), names, central, trust, SYSTEM_CLOCK, archive=catalog.archive_mode
    )
    await collector.start()
    nodes = three_nodes(settings)
    try:
        for node in nodes.values():
            await node.start()
        try:
            await run_case(nodes["single-center"], "KZN-ARC-1")
        finally:
            for node in nodes.values():
                await node.stop()
        local = await local_records(settings)
        await until(lambda: caught_up(central, local), what="the collector to hold every chain")
        named = {
            (r.event.digest, r.event.service, r.event.message_id)
            for records in local.values()
            for r in records
            if r.event.digest is not None and r.event.case_id == "KZN-ARC-1"
        }
        full = {(d, m) for d, s, m in named if s == FULL_SERVICE}
        digest_only = {d for d, s, _ in named if s == DIGEST_SERVICE}
        assert full
        assert digest_only
        archived: dict[str, str] = {}
        for key, message_id in full:
            wire = await central.envelope(key)
            assert wire is not None, f"no archived envelope for {key}"
            verified = unseal(wire, trust)
            assert verified.digest == key
            archived[key] = verified.envelope.kind.value
            if message_id == verified.envelope.message_id:
                archived[key] += "+named"
        # request, receipt, response at least; each digest archived once, named by its records
        assert {"request+named", "receipt+named", "response+named"} <= set(archived.values())
        # What `exchange verify` says of an archived envelope, as a file.
        request = next(k for k, kind in archived.items() if kind.startswith("request"))
        path = tmp_path / "request.json"
        path.write_bytes(await central.envelope(request) or b"")
        result = CliRunner().invoke(
            app,
            ["verify", str(path), "--json"],
            env={**exchange_env(settings), "EXCHANGE_LOG_LEVEL": "CRITICAL"},
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["ok"] is True
        for key in digest_only:
            assert await central.envelope(key) is None
        assert await central.envelope("0" * 64) is None
        assert await central.findings() == []
    finally:
        await collector.stop()


def _records(party: str, wires: list[tuple[bytes, str]]) -> list[AuditRecord]:
    """A chain of ``party`` naming each wire's digest, with its service."""
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    at = FrozenClock().now()
    for seq, (wire, service) in enumerate(wires, start=1):
        event = AuditEvent(
            EventName.CREATED, message_id=f"m{seq}", service=service, digest=digest(wire)
        )
        records.append(link(seq, at + timedelta(seconds=seq), party, event, prev))
        prev = records[-1].hash
    return records


def _wire(pki: ThrowawayPKI, service: str = FULL_SERVICE) -> bytes:
    envelope = make_envelope(FrozenClock(), service=ServiceRef(code=service, version="1"))
    return seal(envelope, pki.credentials("single-center"), WireFormat.JSON)


async def test_only_matching_named_bytes_are_kept(
    pki: ThrowawayPKI, trust: TrustStore, central: CentralStore
) -> None:
    """Bytes under another digest and bytes no record names are refused with named findings."""
    good, other, stranger = (_wire(pki) for _ in range(3))
    private = _wire(pki, DIGEST_SERVICE)
    records = _records(
        "single-center",
        [(good, FULL_SERVICE), (other, FULL_SERVICE), (private, DIGEST_SERVICE)],
    )
    envelopes = {
        digest(good): good,
        digest(other): stranger,  # named, but the bytes are another envelope's
        digest(stranger): stranger,  # well hashed, but no record of the batch names it
        digest(private): private,  # a digest-only service
    }
    policy = read_catalog_data(DATA / "catalog.toml").archive_mode
    collector = Collector(None, BusNames("t."), central, trust, FrozenClock(), archive=policy)  # type: ignore[arg-type]
    await central.open()
    try:
        outcome = await collector.ingest(Batch("single-center", records, [], envelopes))
        assert outcome.stored == 3
        assert await central.envelope(digest(good)) == good
        assert await central.envelope(digest(other)) is None
        assert await central.envelope(digest(stranger)) is None
        assert await central.envelope(digest(private)) is None
        kinds = sorted((f.kind, f.seq) for f in await central.findings("single-center"))
        assert kinds == [("archive-mismatch", 2), ("archive-unclaimed", 0)]
        # Redelivered: the same bytes change nothing; the archived ones stay.
        again = await collector.ingest(Batch("single-center", records, [], {digest(good): good}))
        assert again.duplicates == 3
        assert await central.envelope(digest(good)) == good
    finally:
        await central.close()


async def test_changed_bytes_are_refused_on_read(
    pki: ThrowawayPKI, trust: TrustStore, central: CentralStore
) -> None:
    """Archived bytes edited in the database no longer pass as the envelope (archive-mismatch)."""
    wire = _wire(pki)
    key = digest(wire)
    collector = Collector(None, BusNames("t."), central, trust, FrozenClock())  # type: ignore[arg-type]
    await central.open()
    try:
        records = _records("single-center", [(wire, FULL_SERVICE)])
        await collector.ingest(Batch("single-center", records, [], {key: wire}))
        assert await central.envelope(key) == wire
        changed = wire.replace(b'"payload":"', b'"payload":"e', 1)
        if isinstance(central, SQLiteCentralStore):
            import sqlite3

            with sqlite3.connect(central.path) as conn:
                conn.execute("UPDATE envelopes SET wire = ? WHERE digest = ?", (changed, key))
        else:
            assert isinstance(central, PostgresCentralStore)
            conn = await asyncpg.connect(DSN)
            try:
                await conn.execute(
                    f'UPDATE "{central.schema}".envelopes SET wire = $1 WHERE digest = $2',  # noqa: S608
                    changed,
                    key,
                )
            finally:
                await conn.close()
        with pytest.raises(ArchiveMismatch) as info:
            await central.envelope(key)
        assert info.value.code == "archive-mismatch"
    finally:
        await central.close()
