"""The central audit store in one SQLite file (the embedded default)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from exchange.audit.batch import Batch
from exchange.audit.central._plan import plan_ingest
from exchange.audit.central.archive import checked
from exchange.audit.central.base import Finding, IngestOutcome, RecordQuery, conflict_finding
from exchange.audit.checkpoint import parse_checkpoint
from exchange.exceptions import StoreError, StoreUnavailable
from exchange.ledger import codec
from exchange.ledger.chain import GENESIS_HASH, link
from exchange.ledger.event import AuditEvent, AuditRecord

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER NOT NULL, at TEXT NOT NULL, party TEXT NOT NULL, event TEXT NOT NULL,
    message_id TEXT, correlation_id TEXT, case_id TEXT, service TEXT, kind TEXT, digest TEXT,
    detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (party, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_message ON records (message_id);
CREATE INDEX IF NOT EXISTS records_correlation ON records (correlation_id);
CREATE INDEX IF NOT EXISTS records_case ON records (case_id);
CREATE INDEX IF NOT EXISTS records_at ON records (at);
CREATE INDEX IF NOT EXISTS records_party_at ON records (party, at);
CREATE INDEX IF NOT EXISTS records_service_at ON records (service, at);
CREATE INDEX IF NOT EXISTS records_event_at ON records (event, at);
CREATE TABLE IF NOT EXISTS heads (party TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    party TEXT NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (party, seq)
);
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY, party TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL, found_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conflicts (
    seq INTEGER NOT NULL, at TEXT NOT NULL, party TEXT NOT NULL, event TEXT NOT NULL,
    message_id TEXT, correlation_id TEXT, case_id TEXT, service TEXT, kind TEXT, digest TEXT,
    detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, found_at TEXT NOT NULL,
    PRIMARY KEY (party, seq, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS envelopes (digest TEXT PRIMARY KEY, wire BLOB NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
_COLUMNS = ", ".join(codec.AUDIT_COLUMNS)
_SELECT = f"SELECT {_COLUMNS} FROM records"  # noqa: S608
# Each branch on its own index; UNION drops the rows two branches both found.
_TRACED = f"""
WITH first AS (
    {_SELECT} WHERE case_id = ?1 UNION {_SELECT} WHERE message_id = ?1
    UNION {_SELECT} WHERE correlation_id = ?1
), asked AS (
    SELECT DISTINCT correlation_id FROM first
    WHERE correlation_id IS NOT NULL AND correlation_id <> ?1
)
SELECT * FROM first
UNION {_SELECT} WHERE message_id IN (SELECT correlation_id FROM asked)
UNION {_SELECT} WHERE correlation_id IN (SELECT correlation_id FROM asked)
"""  # noqa: S608
_INSERT = f"INSERT INTO records ({_COLUMNS}) VALUES ({', '.join('?' * len(codec.AUDIT_COLUMNS))})"  # noqa: S608
_INSERT_LATE = _INSERT.replace("INSERT", "INSERT OR IGNORE", 1)
_SET_HEAD = "INSERT OR REPLACE INTO heads (party, seq, hash) VALUES (?, ?, ?)"
_INSERT_CONFLICT = (
    f"INSERT OR IGNORE INTO conflicts ({_COLUMNS}, found_at) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(codec.AUDIT_COLUMNS) + 1))})"
)
_INSERT_FINDING = "INSERT INTO findings (party, seq, kind, detail, found_at) VALUES (?, ?, ?, ?, ?)"


class SQLiteCentralStore:
    """Every party's audit chain in one SQLite file; one thread does all the I/O."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Open the file (WAL) and create the tables.

        Raises:
            StoreUnavailable (store-unavailable): the file cannot be opened.
        """
        if self._executor is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-central")
        try:
            await self._run(self._connect)
        except BaseException:
            await self.close()
            raise

    def _connect(self, _: sqlite3.Connection | None) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # acked batches are gone from the broker
        conn.executescript(_SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        """Close the connection and the thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)

    async def ingest(
        self, batch: Batch, at: datetime, rejected: Sequence[Finding] = ()
    ) -> IngestOutcome:
        """Store a batch in one transaction (checked, idempotent by (party, seq))."""
        return await self._run(lambda conn: self._ingest(self._need(conn), batch, at, rejected))

    def _ingest(
        self, conn: sqlite3.Connection, batch: Batch, at: datetime, rejected: Sequence[Finding]
    ) -> IngestOutcome:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT seq, hash FROM heads WHERE party = ?", (batch.party,))
            head = row.fetchone()
            plan = plan_ingest(batch.party, (head[0], head[1]) if head else None, batch.records, at)
            outcome = IngestOutcome(findings=[*plan.findings, *rejected])
            conn.executemany(_INSERT, [codec.audit_values(r, codec.time_text) for r in plan.fresh])
            outcome.stored = len(plan.fresh)
            for record in plan.late:
                cur = conn.execute(_INSERT_LATE, codec.audit_values(record, codec.time_text))
                outcome.stored += cur.rowcount
                outcome.duplicates += 1 - cur.rowcount
                if cur.rowcount == 0:
                    self._compare(conn, record, at, outcome)
            if plan.head is not None:
                conn.execute(_SET_HEAD, (batch.party, *plan.head))
            for body in batch.checkpoints:
                seq = parse_checkpoint(body).seq
                conn.execute(
                    "INSERT OR IGNORE INTO checkpoints (party, seq, body) VALUES (?, ?, ?)",
                    (batch.party, seq, body),
                )
            conn.executemany(
                "INSERT OR IGNORE INTO envelopes (digest, wire) VALUES (?, ?)",
                list(batch.envelopes.items()),
            )
            conn.executemany(
                _INSERT_FINDING,
                [
                    (f.party, f.seq, f.kind, f.detail, codec.time_text(f.found_at))
                    for f in outcome.findings
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return outcome

    def _compare(
        self, conn: sqlite3.Connection, record: AuditRecord, at: datetime, outcome: IngestOutcome
    ) -> None:
        """A record for a seq already stored: the same is a redelivery, another a conflict."""
        row = conn.execute(
            "SELECT hash FROM records WHERE party = ? AND seq = ?", (record.party, record.seq)
        ).fetchone()
        if row is None or row[0] == record.hash:
            return
        values = (*codec.audit_values(record, codec.time_text), codec.time_text(at))
        if conn.execute(_INSERT_CONFLICT, values).rowcount:
            outcome.findings.append(conflict_finding(record, at))

    async def append(self, party: str, event: AuditEvent, at: datetime) -> AuditRecord:
        """Link ``event`` to ``party``'s chain after its head, in one transaction."""

        def append(conn: sqlite3.Connection | None) -> AuditRecord:
            conn = self._need(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                head = conn.execute("SELECT seq, hash FROM heads WHERE party = ?", (party,))
                seq, prev = head.fetchone() or (0, GENESIS_HASH)
                record = link(seq + 1, at, party, event, prev)
                conn.execute(_INSERT, codec.audit_values(record, codec.time_text))
                conn.execute(_SET_HEAD, (party, record.seq, record.hash))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return record

        return await self._run(append)

    async def check_writable(self) -> None:
        """Take SQLite's write lock and roll back (read-only file, full disk, or a lock held
        past the busy timeout fail here).

        Raises:
            StoreError (store-error): not open. StoreUnavailable (store-unavailable): not
                writable.
        """

        def probe(conn: sqlite3.Connection | None) -> None:
            conn = self._need(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")

        await self._run(probe)

    async def add_findings(self, findings: Sequence[Finding]) -> None:
        """Store findings that came with no records (a refused batch)."""
        rows = [(f.party, f.seq, f.kind, f.detail, codec.time_text(f.found_at)) for f in findings]
        await self._run(lambda conn: self._need(conn).executemany(_INSERT_FINDING, rows))

    async def conflicts(self, party: str | None = None) -> Sequence[AuditRecord]:
        """Second, different records offered for stored seqs, kept as evidence; by party, seq."""
        sql = f"SELECT {_COLUMNS} FROM conflicts"  # noqa: S608
        rows = await self._fetch(
            sql + (" WHERE party = ? ORDER BY seq" if party else " ORDER BY party, seq"),
            (party,) if party else (),
        )
        return [codec.audit_record(r, datetime.fromisoformat) for r in rows]

    async def load(self, records: Sequence[AuditRecord]) -> None:
        """Append records without checks; moves the parties' heads."""

        def load(conn: sqlite3.Connection | None) -> None:
            conn = self._need(conn)
            heads: dict[str, tuple[int, str]] = {}
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, [codec.audit_values(r, codec.time_text) for r in records])
            for r in records:
                if r.seq > heads.get(r.party, (0, ""))[0]:
                    heads[r.party] = (r.seq, r.hash)
            conn.executemany(_SET_HEAD, [(p, s, h) for p, (s, h) in heads.items()])
            conn.execute("COMMIT")

        await self._run(load)

    async def parties(self) -> Sequence[str]:
        """Every party with a head, sorted."""
        rows = await self._fetch("SELECT party FROM heads ORDER BY party", ())
        return [str(r[0]) for r in rows]

    async def head(self, party: str) -> tuple[int, str] | None:
        """The highest (seq, hash) received from ``party``."""
        rows = await self._fetch("SELECT seq, hash FROM heads WHERE party = ?", (party,))
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    async def records(
        self, party: str, since_seq: int = 0, limit: int = 10_000
    ) -> Sequence[AuditRecord]:
        """A party's records with seq > since_seq, in seq order."""
        rows = await self._fetch(
            f"{_SELECT} WHERE party = ? AND seq > ? ORDER BY seq LIMIT ?", (party, since_seq, limit)
        )
        return [codec.audit_record(r, datetime.fromisoformat) for r in rows]

    async def checkpoints(self, party: str) -> Sequence[bytes]:
        """A party's checkpoint documents, in seq order."""
        rows = await self._fetch(
            "SELECT body FROM checkpoints WHERE party = ? ORDER BY seq", (party,)
        )
        return [bytes(r[0]) for r in rows]

    async def related(self, ids: Sequence[str]) -> Sequence[AuditRecord]:
        """Records whose message_id or correlation_id is one of ``ids``."""
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = await self._fetch(
            f"{_SELECT} WHERE message_id IN ({marks}) OR correlation_id IN ({marks})",
            (*ids, *ids),
        )
        return [codec.audit_record(r, datetime.fromisoformat) for r in rows]

    async def by_case(self, case_id: str) -> Sequence[AuditRecord]:
        """Every record of a case."""
        rows = await self._fetch(f"{_SELECT} WHERE case_id = ?", (case_id,))
        return [codec.audit_record(r, datetime.fromisoformat) for r in rows]

    async def traced(self, ident: str) -> Sequence[AuditRecord]:
        """What a trace of ``ident`` shows, in one statement."""
        rows = await self._fetch(_TRACED, (ident,))
        return [codec.audit_record(r, datetime.fromisoformat) for r in rows]

    async def findings(self, party: str | None = None) -> Sequence[Finding]:
        """Findings on arrival, oldest first."""
        sql = "SELECT party, seq, kind, detail, found_at FROM findings"
        rows = await self._fetch(
            sql + (" WHERE party = ? ORDER BY id" if party else " ORDER BY id"),
            (party,) if party else (),
        )
        return [Finding(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows]

    async def envelope(self, digest: str) -> bytes | None:
        """The archived wire bytes with this digest, or None (hashed again on the way out)."""
        rows = await self._fetch("SELECT wire FROM envelopes WHERE digest = ?", (digest,))
        return checked(digest, bytes(rows[0][0])) if rows else None

    async def search(
        self, query: RecordQuery, *, offset: int = 0, limit: int = 50
    ) -> Sequence[AuditRecord]:
        """Records matching ``query``, newest first, one page."""
        where: list[str] = []
        params: list[Any] = []
        if query.message_id is not None:
            where.append("(message_id = ? OR correlation_id = ?)")
            params += [query.message_id, query.message_id]
        for column in ("case_id", "party", "service"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.events:
            where.append(f"event IN ({', '.join('?' * len(query.events))})")
            params += query.events
        if query.since is not None:
            where.append("at >= ?")
            params.append(codec.time_text(query.since))
        if query.until is not None:
            where.append("at <= ?")
            params.append(codec.time_text(query.until))
        sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY at DESC, party, seq DESC LIMIT ? OFFSET ?"
        rows = await self._fetch(sql, (*params, limit, offset))
        return [codec.audit_record(r, datetime.fromisoformat) for r in rows]

    def _need(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise StoreError(f"the central audit store at {self.path} is not open")
        return conn

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._run(lambda conn: self._need(conn).execute(sql, params).fetchall())

    async def _run(self, work: Callable[[sqlite3.Connection | None], T]) -> T:
        if self._executor is None:
            raise StoreError(f"the central audit store at {self.path} is not open")

        def call() -> T:
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise StoreUnavailable(
                    f"cannot use the central audit store at {self.path}: {exc}",
                    path=str(self.path),
                ) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)
