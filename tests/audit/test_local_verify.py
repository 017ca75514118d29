"""``exchange audit verify --local``: a party's tail cut together with its last checkpoint.

The collector's signed head acknowledgment, held in the party's store, shows the cut; when
the acknowledgment is deleted too, the central log's head shows it.
"""

# ruff: noqa: S608 (the tampering builds SQL from this test's own schema name)

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from exchange._clock import FrozenClock
from exchange.audit.ack import HeadAck, seal_ack
from exchange.audit.batch import Batch
from exchange.audit.central import CentralStore, SQLiteCentralStore
from exchange.audit.central.postgres import PostgresCentralStore
from exchange.audit.checkpoint import make_checkpoint
from exchange.cli import app
from exchange.config import Settings
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.factory import open_store
from exchange.testing import ThrowawayPKI
from tests.bus.conftest import DATA
from tests.postgres import DSN

PARTY = "improvement"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Where the party's store is: a SQLite file, or a PostgreSQL schema of this test's own."""
    base = Settings(catalog=DATA / "catalog.toml", store_dir=tmp_path / "stores")
    if request.param == "sqlite":
        return base
    prefix = f"{request.getfixturevalue('pg_prefix')}_{uuid.uuid4().hex[:6]}"
    return base.model_copy(update={"store_dsn": DSN, "bus_prefix": prefix})


async def _fill(settings: Settings, pki: ThrowawayPKI, central: Path | CentralStore) -> None:
    """25 records, checkpoints at 10, 20, 25, the collector's acknowledgment of 25 held,
    and the central log holding all 25."""
    clock = FrozenClock()
    store = open_store(PARTY, settings, clock)
    await store.open()
    try:
        for i in range(25):
            async with store.transaction() as tx:
                tx.audit(AuditEvent(EventName.STATUS_SENT, message_id=f"m{i}"))
        records = list(await store.audit())
        for seq in (10, 20, 25):
            record = records[seq - 1]
            at = record.at + timedelta(seconds=1)
            checkpoint = make_checkpoint(pki.credentials(PARTY), seq, record.hash, at)
            await store.add_checkpoint(seq, checkpoint.dumps())
    finally:
        await store.close()
    head = records[-1]
    log = SQLiteCentralStore(central) if isinstance(central, Path) else central
    await log.open()
    try:
        await log.ingest(Batch(PARTY, records, []), clock.now())
        acknowledged = AuditEvent(
            EventName.HEAD_ACKNOWLEDGED, detail={"party": PARTY, "seq": head.seq}
        )
        own = await log.append("collector", acknowledged, clock.now())
    finally:
        await log.close()
    ack = HeadAck(PARTY, head.seq, head.hash, head.at + timedelta(seconds=2), own.seq)
    store = open_store(PARTY, settings, clock)
    await store.open()
    try:
        await store.add_ack(ack.seq, seal_ack(ack, pki.credentials("collector")))
    finally:
        await store.close()


async def _cut(settings: Settings, *, acknowledgment: bool) -> None:
    """Delete seqs 21.. and the checkpoints after 20 (and the held acknowledgment)."""
    store = open_store(PARTY, settings, FrozenClock())
    await store.open()
    try:
        conn: Any
        if settings.store_dsn is None:
            import sqlite3

            conn = sqlite3.connect(settings.store_dir / f"{PARTY}.db")
            conn.execute("DROP TRIGGER audit_no_delete")
            conn.execute("DELETE FROM audit WHERE seq >= 21")
            conn.execute("DELETE FROM checkpoints WHERE seq >= 21")
            if acknowledgment:
                conn.execute("DELETE FROM audit_acks")
            conn.commit()
            conn.close()
        else:
            import asyncpg

            s = f'"{settings.bus_prefix}_{PARTY}"'
            conn = await asyncpg.connect(DSN)
            try:
                await conn.execute(f"ALTER TABLE {s}.audit DISABLE TRIGGER USER")
                await conn.execute(f"DELETE FROM {s}.audit WHERE seq >= 21")
                await conn.execute(f"DELETE FROM {s}.checkpoints WHERE seq >= 21")
                if acknowledgment:
                    await conn.execute(f"DELETE FROM {s}.audit_acks")
            finally:
                await conn.close()
    finally:
        await store.close()


def _verify(
    settings: Settings, pki: ThrowawayPKI, central: Path | CentralStore
) -> tuple[int, dict[str, Any]]:
    if isinstance(central, PostgresCentralStore):
        where = {"EXCHANGE_AUDIT_DSN": DSN, "EXCHANGE_AUDIT_SCHEMA_NAME": central.schema}
    else:
        path = central.path if isinstance(central, SQLiteCentralStore) else central
        where = {"EXCHANGE_AUDIT_PATH": str(path)}
    env = {
        "EXCHANGE_CERTS_DIR": str(pki.path),
        "EXCHANGE_CATALOG": str(settings.catalog),
        "EXCHANGE_STORE_DIR": str(settings.store_dir),
        "EXCHANGE_BUS_PREFIX": settings.bus_prefix,
        **where,
        **({"EXCHANGE_STORE_DSN": settings.store_dsn} if settings.store_dsn else {}),
    }
    args = ["audit", "verify", "--local", "--party", PARTY, "--json"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.stdout, result.output
    [report] = json.loads(result.stdout)
    return result.exit_code, report


def test_intact_store_verifies(settings: Settings, pki: ThrowawayPKI, tmp_path: Path) -> None:
    """The baseline: the whole chain, its checkpoints and the acknowledgment agree."""
    asyncio.run(_fill(settings, pki, tmp_path / "central.db"))
    code, report = _verify(settings, pki, tmp_path / "central.db")
    assert (code, report["ok"], report["last_seq"]) == (0, True, 25)


def test_tail_cut_with_its_checkpoint_shows_against_the_acknowledgment(
    settings: Settings, pki: ThrowawayPKI, tmp_path: Path
) -> None:
    """No central log reachable: the acknowledgment the party holds names the cut."""
    asyncio.run(_fill(settings, pki, tmp_path / "central.db"))
    asyncio.run(_cut(settings, acknowledgment=False))
    code, report = _verify(settings, pki, tmp_path / "elsewhere.db")
    assert code == 1
    assert report["first_problem"]["seq"] == 21
    assert PARTY in report["first_problem"]["message"]
    assert not (tmp_path / "elsewhere.db").exists()  # verify created no empty central log


def test_tail_cut_with_its_acknowledgment_shows_against_the_central_head(
    settings: Settings, pki: ThrowawayPKI, tmp_path: Path
) -> None:
    """Acknowledgment deleted too: the central log's head names the cut."""
    asyncio.run(_fill(settings, pki, tmp_path / "central.db"))
    asyncio.run(_cut(settings, acknowledgment=True))
    code, report = _verify(settings, pki, tmp_path / "central.db")
    assert code == 1
    assert report["first_problem"]["seq"] == 21
    assert "ends before seq 25" in report["first_problem"]["message"]


async def _cut_central(central: CentralStore, party: str, from_seq: int) -> None:
    """Delete a chain's central records from ``from_seq`` with its head moved back (or
    deleted, from seq 1), as one with write access to the central log would."""
    if isinstance(central, SQLiteCentralStore):
        import sqlite3

        conn = sqlite3.connect(central.path)
        conn.execute("DROP TRIGGER records_no_delete")
        conn.execute("DELETE FROM records WHERE party = ? AND seq >= ?", (party, from_seq))
        conn.execute("DELETE FROM heads WHERE party = ?", (party,))
        conn.execute(
            "INSERT INTO heads SELECT party, seq, hash FROM records WHERE party = ? AND seq = ?",
            (party, from_seq - 1),
        )
        conn.commit()
        conn.close()
        return
    import asyncpg

    assert isinstance(central, PostgresCentralStore)
    s = f'"{central.schema}"'
    pg = await asyncpg.connect(DSN)
    try:
        await pg.execute(f"ALTER TABLE {s}.records DISABLE TRIGGER USER")
        await pg.execute(f"DELETE FROM {s}.records WHERE party = $1 AND seq >= $2", party, from_seq)
        await pg.execute(f"DELETE FROM {s}.heads WHERE party = $1", party)
        await pg.execute(
            f"INSERT INTO {s}.heads SELECT party, seq, hash FROM {s}.records "
            "WHERE party = $1 AND seq = $2",
            party,
            from_seq - 1,
        )
    finally:
        await pg.close()


@pytest.mark.parametrize(
    ("cut_party", "from_seq", "what"),
    [
        (PARTY, 21, "the central log's tail was cut"),
        (PARTY, 1, "the central log's tail was cut"),
        ("collector", 1, "the collector's chain was cut"),
    ],
    ids=["party-tail", "whole-party", "collector-chain"],
)
def test_central_cut_shows_against_the_acknowledgment_the_party_holds(
    settings: Settings,
    pki: ThrowawayPKI,
    central: CentralStore,
    cut_party: str,
    from_seq: int,
    what: str,
) -> None:
    """The central log's tail of the party (or all of it), or the collector's own chain of
    acknowledgments, deleted: the acknowledgment the party holds names the chain and the
    first seq the central log lost."""
    asyncio.run(_fill(settings, pki, central))
    asyncio.run(_cut_central(central, cut_party, from_seq))
    code, report = _verify(settings, pki, central)
    assert code == 1
    assert report["last_seq"] == 25
    [problem] = report["problems"]
    assert (problem["code"], problem["seq"]) == ("audit-missing", from_seq)
    assert problem["message"].startswith(f"{cut_party} seq {from_seq}:")
    assert what in problem["message"]
