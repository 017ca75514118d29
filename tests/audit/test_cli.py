"""``exchange trace`` and ``exchange audit verify`` on a central SQLite store."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from exchange.audit.batch import Batch
from exchange.audit.central import SQLiteCentralStore
from exchange.audit.checkpoint import make_checkpoint
from exchange.cli import app
from exchange.cli.audit import print_timeline
from exchange.ledger.chain import GENESIS_HASH, link
from exchange.testing import ThrowawayPKI
from tests.audit.central.contract import _three_party_case
from tests.bus.conftest import DATA


@pytest.fixture
def central_path(tmp_path: Path, pki: ThrowawayPKI) -> Path:
    """A central store holding the three-party case, each chain checkpointed at its head."""
    path = tmp_path / "central.db"

    async def fill() -> None:
        store = SQLiteCentralStore(path)
        await store.open()
        steps = _three_party_case()
        for party in ("single-center", "improvement", "land-property"):
            prev, mine = GENESIS_HASH, []
            for seq, (at, p, event) in enumerate((s for s in steps if s[1] == party), 1):
                mine.append(link(seq, at, p, event, prev))
                prev = mine[-1].hash
            head = mine[-1]
            cp = make_checkpoint(
                pki.credentials(party), head.seq, head.hash, head.at + timedelta(seconds=1)
            )
            await store.ingest(Batch(party, mine, [cp.dumps()]), head.at)
        await store.close()

    asyncio.run(fill())
    return path


def run(pki: ThrowawayPKI, central_path: Path, *args: str) -> Result:
    """Invoke ``exchange`` with the central store and trust store of this test."""
    env = {
        "EXCHANGE_AUDIT_PATH": str(central_path),
        "EXCHANGE_CERTS_DIR": str(pki.path),
        "EXCHANGE_CATALOG": str(DATA / "catalog.toml"),
    }
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_trace_json(pki: ThrowawayPKI, central_path: Path) -> None:
    """--json gives every step in time order and the time waited on each department."""
    result = run(pki, central_path, "trace", "CASE-1", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert len(doc["steps"]) == 14
    assert [s["at"] for s in doc["steps"]] == sorted(s["at"] for s in doc["steps"])
    assert doc["waiting_by_party"] == {"improvement": 3000.0, "land-property": 600.0}


def test_trace_filters(pki: ThrowawayPKI, central_path: Path) -> None:
    """Filters by party and event narrow the steps."""
    result = run(
        pki, central_path, "trace", "CASE-1", "--party", "land-property", "--status", "received",
        "--json",
    )  # fmt: skip
    steps = json.loads(result.output)["steps"]
    assert [(s["party"], s["event"]) for s in steps] == [("land-property", "received")]
    table = run(pki, central_path, "trace", "req-1")
    assert "waiting on improvement: 3000.000 s" in table.output


def test_verify_names_the_first_bad_record(pki: ThrowawayPKI, central_path: Path) -> None:
    """verify exits 0 on intact chains; after an edit it exits 1 naming party and seq."""
    ok = run(pki, central_path, "audit", "verify", "--json")
    assert ok.exit_code == 0, ok.output
    assert all(r["ok"] and r["checkpoints"] == 1 for r in json.loads(ok.output))
    conn = sqlite3.connect(central_path)
    conn.execute("DROP TRIGGER records_no_update")
    conn.execute("UPDATE records SET event = 'rejected' WHERE party = 'improvement' AND seq = 3")
    conn.commit()
    conn.close()
    bad = run(pki, central_path, "audit", "verify", "--party", "improvement", "--json")
    assert bad.exit_code == 1
    (report,) = json.loads(bad.output)
    assert report["first_problem"]["seq"] == 3
    assert report["first_problem"]["code"] == "audit-tampered"


def test_trace_table_says_what_a_waiting_request_waits_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ``waiting`` step is shown with the request (or broker) it waits on."""
    step = {
        "at": "2026-03-02T09:00:00.000000Z",
        "party": "improvement",
        "event": "waiting",
        "kind": "request",
        "message_id": "req-1",
        "service": "tree-felling-permit",
        "detail": {"on": "question-1", "attempt": 1},
    }
    print_timeline({"steps": [step], "waiting": []}, "Trace of req-1")
    assert "waiting on question-1" in capsys.readouterr().out
