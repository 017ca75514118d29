"""Audit log: appends/s on both party stores, collector ingest/s, trace and verify at 1M records.

Prints the numbers; the one target is a ratio in the same run (issue 17: PostgreSQL party
appends >= 25% of SQLite's); absolute times are not targets on a machine whose speed
changes from day to day. No assertion (timings are noisy here).
Run with ``python benchmarks/bench_audit.py [--records N] [--no-postgres]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from exchange._clock import SystemClock
from exchange.audit.batch import Batch
from exchange.audit.central import CentralStore, SQLiteCentralStore
from exchange.audit.central.postgres import PostgresCentralStore
from exchange.audit.trace import trace
from exchange.audit.verify import verify_party
from exchange.ledger.chain import GENESIS_HASH, link
from exchange.ledger.event import AuditEvent, AuditRecord, EventName
from exchange.node.store import PostgresStore, SQLiteStore, Store

DSN = "postgresql://postgres@127.0.0.1:5432/test"
PARTIES = ("single-center", "improvement", "land-property", "architecture", "urban-permits")
T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
# Issue 17: PostgreSQL party appends at least this share of SQLite's, in the same run.
PG_APPEND_TARGET = 0.25


async def appends_per_second(
    store: Store, total: int, concurrency: int, per_transaction: int = 1
) -> float:
    """Audit appends/s: ``concurrency`` tasks committing transactions of ``per_transaction``."""
    await store.open()
    per_task = total // concurrency // per_transaction

    async def worker(n: int) -> None:
        for i in range(per_task):
            async with store.transaction() as tx:
                for j in range(per_transaction):
                    tx.audit(
                        AuditEvent(
                            EventName.STATUS_SENT, message_id=f"m{n}-{i}-{j}", detail={"i": i}
                        )
                    )

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - start
    await store.close()
    return per_task * concurrency * per_transaction / elapsed


# What each party of a case writes for a message of each kind.
CASE_EVENTS = {
    "request": EventName.RECEIVED,
    "receipt": EventName.RECEIPT_SENT,
    "status": EventName.STATUS_SENT,
    "response": EventName.RESPONDED,
}


def case_records(total: int) -> Iterator[list[AuditRecord]]:
    """``total`` records over five parties in chunks: requests, receipts, answers by case."""
    heads = dict.fromkeys(PARTIES, (0, GENESIS_HASH))
    chunk: list[AuditRecord] = []
    for i in range(total):
        party = PARTIES[i % len(PARTIES)]
        case = f"KZN-{i // 10:07d}"
        request = f"req-{i // 5:08d}"
        mid = request if i % 5 == 0 else f"msg-{i:08d}"
        kind = ("request", "receipt", "status", "response", "request")[i % 5]
        event = AuditEvent(
            CASE_EVENTS[kind],
            message_id=mid,
            correlation_id=None if kind == "request" else request,
            case_id=case,
            service="tree-felling-permit",
            kind=kind,
            digest=f"{i:064x}",
            detail={"recipient": "improvement"},
        )
        seq, prev = heads[party]
        record = link(seq + 1, T0 + timedelta(milliseconds=i), party, event, prev)
        heads[party] = (record.seq, record.hash)
        chunk.append(record)
        if len(chunk) == 50_000:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def ingest_per_second(central: CentralStore, total: int) -> float:
    """Collector ingest: records/s in batches of 500, as nodes ship them."""
    records = [r for chunk in case_records(total) for r in chunk]
    by_party: dict[str, list[AuditRecord]] = {}
    for record in records:
        by_party.setdefault(record.party, []).append(record)
    batches = [
        Batch(party, rs[i : i + 500], [])
        for party, rs in by_party.items()
        for i in range(0, len(rs), 500)
    ]
    start = time.perf_counter()
    for batch in batches:
        await central.ingest(batch, T0)
    return total / (time.perf_counter() - start)


async def big_store(central: CentralStore, total: int) -> float:
    """Fill with ``total`` records (batched inserts); return the seconds it took."""
    start = time.perf_counter()
    for chunk in case_records(total):
        await central.load(chunk)
    return time.perf_counter() - start


async def trace_ms(central: CentralStore, total: int, lookups: int = 200) -> tuple[float, float]:
    """Median and p95 milliseconds of a trace lookup, by message id and by case id."""
    rng = random.Random(7)
    times: list[float] = []
    for n in range(lookups):
        i = rng.randrange(total)
        ident = f"msg-{i:08d}" if n % 2 and i % 5 else f"KZN-{i // 10:07d}"
        start = time.perf_counter()
        timeline = await trace(central, ident, T0)
        times.append((time.perf_counter() - start) * 1000)
        assert timeline.steps, ident
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


async def verify_seconds(central: CentralStore) -> tuple[float, int]:
    """Seconds to walk every party's chain; records walked."""
    start = time.perf_counter()
    walked = 0
    for party in await central.parties():

        async def fetch(since: int, limit: int, party: str = party) -> Sequence[AuditRecord]:
            return await central.records(party, since, limit)

        report = await verify_party(party, fetch, [], None, head=await central.head(party))
        assert report.ok, report.problems[:3]
        walked += report.records
    return time.perf_counter() - start, walked


async def drop_schema(prefix: str) -> None:
    """Drop the benchmark's PostgreSQL schemas."""
    conn = await asyncpg.connect(DSN)
    try:
        for (name,) in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%"
        ):
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


async def main(total: int, postgres: bool) -> None:
    """Run every measurement and print it."""
    clock = SystemClock()
    prefix = f"bench_{uuid.uuid4().hex[:8]}"
    rows: list[tuple[str, str, str]] = []

    def show(label: str, value: str, target: str = "") -> None:
        rows.append((label, value, target))
        print(f"{label:<48} {value:>16}  {target}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        sqlite_rates: dict[int, float] = {}
        for per_tx in (1, 2, 4):
            store = SQLiteStore(path / f"p{per_tx}.db", "improvement", clock)
            sqlite_rates[per_tx] = await appends_per_second(store, 80_000, 512, per_tx)
            label = f"party appends/s, SQLite, {per_tx} event(s)/transaction"
            show(label, f"{sqlite_rates[per_tx]:,.0f}")
        try:
            if postgres:
                pg = PostgresStore(
                    DSN, "improvement", clock, schema=f"{prefix}_party", max_connections=20
                )
                rate = await appends_per_second(pg, 40_000, 512, 2)
                show("party appends/s, PostgreSQL, 2 events/transaction", f"{rate:,.0f}")
                ratio = rate / sqlite_rates[2]
                verdict = "met" if ratio >= PG_APPEND_TARGET else "NOT met"
                target = f"target >= {PG_APPEND_TARGET:.2f}: {verdict}"
                show("  PostgreSQL/SQLite appends (same run)", f"{ratio:.2f}", target)

            for name, central in _centrals(path, prefix, postgres, "ingest"):
                await central.open()
                rate = await ingest_per_second(central, 100_000)
                show(f"collector ingest records/s, {name}", f"{rate:,.0f}")
                await central.close()

            for name, central in _centrals(path, prefix, postgres, "big"):
                await central.open()
                seconds = await big_store(central, total)
                show(f"load {total:,} records, {name} (s)", f"{seconds:,.1f}")
                median, p95 = await trace_ms(central, total)
                show(
                    f"trace lookup at {total:,} records, {name} (ms)",
                    f"{median:.2f} (p95 {p95:.2f})",
                )
                seconds, walked = await verify_seconds(central)
                show(f"verify {walked:,} records, {name} (s)", f"{seconds:,.1f}")
                await central.close()
        finally:
            if postgres:
                await drop_schema(prefix)


def _centrals(path: Path, prefix: str, postgres: bool, tag: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [("SQLite", SQLiteCentralStore(path / f"{tag}.db"))]
    if postgres:
        found.append(("PostgreSQL", PostgresCentralStore(DSN, f"{prefix}_{tag}")))
    return found


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.records, not args.no_postgres))
