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
from exchange.audit.central import SQLiteCentralStore
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


async def _fill(settings: Settings, pki: ThrowawayPKI, central: Path) -> None:
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
        head = records[-1]
        ack = HeadAck(PARTY, head.seq, head.hash, head.at + timedelta(seconds=2), 1)
        await store.add_ack(ack.seq, seal_ack(ack, pki.credentials("collector")))
    finally:
        await store.close()
    log = SQLiteCentralStore(central)
    await log.open()
    try:
        await log.ingest(Batch(PARTY, records, []), clock.now())
    finally:
        await log.close()


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


def _verify(settings: Settings, pki: ThrowawayPKI, central: Path) -> tuple[int, dict[str, Any]]:
    env = {
        "EXCHANGE_CERTS_DIR": str(pki.path),
        "EXCHANGE_CATALOG": str(settings.catalog),
        "EXCHANGE_STORE_DIR": str(settings.store_dir),
        "EXCHANGE_BUS_PREFIX": settings.bus_prefix,
        "EXCHANGE_AUDIT_PATH": str(central),
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


def _cut_central(central: Path, *, whole_party: bool) -> None:
    """Delete the central log's tail of the party from seq 21 with its head moved back (as
    the collector's own chain of acknowledgments would be cut with it), or the whole party."""
    import sqlite3

    conn = sqlite3.connect(central)
    conn.execute("DROP TRIGGER records_no_delete")
    if whole_party:
        conn.execute("DELETE FROM records WHERE party = ?", (PARTY,))
        conn.execute("DELETE FROM heads WHERE party = ?", (PARTY,))
    else:
        conn.execute("DELETE FROM records WHERE party = ? AND seq >= 21", (PARTY,))
        [(hash_20,)] = conn.execute(
            "SELECT hash FROM records WHERE party = ? AND seq = 20", (PARTY,)
        ).fetchall()
        conn.execute("UPDATE heads SET seq = 20, hash = ? WHERE party = ?", (hash_20, PARTY))
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("whole_party", "first_missing"), [(False, 21), (True, 1)])
def test_central_tail_cut_shows_against_the_acknowledgment_the_party_holds(
    settings: Settings, pki: ThrowawayPKI, tmp_path: Path, whole_party: bool, first_missing: int
) -> None:
    """The central log's tail (or all of the party) deleted: the party's intact chain and the
    acknowledgment it holds name the central log and the first seq it lost."""
    asyncio.run(_fill(settings, pki, tmp_path / "central.db"))
    _cut_central(tmp_path / "central.db", whole_party=whole_party)
    code, report = _verify(settings, pki, tmp_path / "central.db")
    assert code == 1
    assert report["last_seq"] == 25
    assert report["first_problem"]["seq"] == first_missing
    assert report["first_problem"]["code"] == "audit-missing"
    assert "the central log's tail was cut" in report["first_problem"]["message"]
