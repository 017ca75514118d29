"""The central audit store in PostgreSQL (asyncpg): production, and several collectors at once.

Each batch is one transaction holding an advisory lock on its party, so two collectors
consuming the audit queue never interleave one party's chain.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from exchange.audit.batch import Batch
from exchange.audit.central._plan import plan_ingest
from exchange.audit.central.archive import checked
from exchange.audit.central.base import Finding, IngestOutcome, RecordQuery, conflict_finding
from exchange.audit.checkpoint import parse_checkpoint
from exchange.exceptions import StoreError, StoreUnavailable
from exchange.ledger import codec
from exchange.ledger.chain import GENESIS_HASH, link
from exchange.ledger.event import AuditEvent, AuditRecord

if TYPE_CHECKING:
    import asyncpg

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.records (
    seq bigint NOT NULL, at timestamptz NOT NULL, party text NOT NULL, event text NOT NULL,
    message_id text, correlation_id text, case_id text, service text, kind text, digest text,
    detail text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL,
    PRIMARY KEY (party, seq)
);
CREATE INDEX IF NOT EXISTS records_message ON {s}.records (message_id);
CREATE INDEX IF NOT EXISTS records_correlation ON {s}.records (correlation_id);
CREATE INDEX IF NOT EXISTS records_case ON {s}.records (case_id);
CREATE INDEX IF NOT EXISTS records_at ON {s}.records (at);
CREATE INDEX IF NOT EXISTS records_party_at ON {s}.records (party, at);
CREATE INDEX IF NOT EXISTS records_service_at ON {s}.records (service, at);
CREATE INDEX IF NOT EXISTS records_event_at ON {s}.records (event, at);
CREATE TABLE IF NOT EXISTS {s}.heads (
    party text PRIMARY KEY, seq bigint NOT NULL, hash text NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.checkpoints (
    party text NOT NULL, seq bigint NOT NULL, body bytea NOT NULL, PRIMARY KEY (party, seq)
);
CREATE TABLE IF NOT EXISTS {s}.findings (
    id bigserial PRIMARY KEY, party text NOT NULL, seq bigint NOT NULL, kind text NOT NULL,
    detail text NOT NULL, found_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.conflicts (
    seq bigint NOT NULL, at timestamptz NOT NULL, party text NOT NULL, event text NOT NULL,
    message_id text, correlation_id text, case_id text, service text, kind text, digest text,
    detail text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL,
    found_at timestamptz NOT NULL,
    PRIMARY KEY (party, seq, hash)
);
CREATE TABLE IF NOT EXISTS {s}.envelopes (digest text PRIMARY KEY, wire bytea NOT NULL);
CREATE OR REPLACE FUNCTION {s}.records_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE OR REPLACE TRIGGER records_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.records
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.records_append_only();
"""


class PostgresCentralStore:
    """Every party's audit chain in one PostgreSQL schema."""

    def __init__(
        self, dsn: str, schema: str = "audit_central", *, max_connections: int = 5
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema {schema!r} must be a lower-case SQL identifier")
        self.dsn = dsn
        self.schema = schema
        self._max = max_connections
        self._pool: asyncpg.Pool | None = None
        s = self._s = f'"{schema}"'
        self._touch = f"UPDATE {s}.heads SET seq = seq WHERE false"  # noqa: S608
        columns = ", ".join(codec.AUDIT_COLUMNS)
        marks = ", ".join(f"${i}" for i in range(1, len(codec.AUDIT_COLUMNS) + 1))
        self._insert = f"INSERT INTO {s}.records ({columns}) VALUES ({marks})"  # noqa: S608
        self._select = f"SELECT {columns} FROM {s}.records"  # noqa: S608
        select = self._select
        # Each branch on its own index; UNION drops the rows two branches both found.
        self._traced = (
            f"WITH first AS ({select} WHERE case_id = $1 UNION {select} WHERE message_id = $1 "  # noqa: S608
            f"UNION {select} WHERE correlation_id = $1), asked AS (SELECT DISTINCT "
            "correlation_id FROM first WHERE correlation_id IS NOT NULL AND correlation_id <> $1) "
            f"SELECT * FROM first UNION {select} WHERE message_id IN (SELECT correlation_id FROM "
            f"asked) UNION {select} WHERE correlation_id IN (SELECT correlation_id FROM asked)"
        )
        self._set_head = (
            f"INSERT INTO {s}.heads (party, seq, hash) VALUES ($1, $2, $3) "  # noqa: S608
            "ON CONFLICT (party) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash"
        )
        conflict_marks = ", ".join(f"${i}" for i in range(1, len(codec.AUDIT_COLUMNS) + 2))
        self._insert_conflict = (
            f"INSERT INTO {s}.conflicts ({columns}, found_at) "  # noqa: S608
            f"VALUES ({conflict_marks}) ON CONFLICT DO NOTHING"
        )
        self._insert_finding = (
            f"INSERT INTO {s}.findings (party, seq, kind, detail, found_at) "  # noqa: S608
            "VALUES ($1, $2, $3, $4, $5)"
        )

    def _where(self) -> str:
        return f"{self.dsn.rsplit('@', 1)[-1]} (schema {self.schema})"

    async def open(self) -> None:
        """Connect a pool and create the schema and tables if needed.

        Raises:
            StoreUnavailable (store-unavailable): PostgreSQL cannot be reached.
        """
        if self._pool is not None:
            return
        import asyncpg

        try:
            pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self._max, timeout=10)
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('exchange-audit-ddl'))")
                await conn.execute(_DDL.format(s=self._s))
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot reach the central audit store at {self._where()}: {exc}"
            ) from exc
        self._pool = pool

    async def close(self) -> None:
        """Close the pool."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ingest(
        self, batch: Batch, at: datetime, rejected: Sequence[Finding] = ()
    ) -> IngestOutcome:
        """Store a batch in one transaction (checked, idempotent by (party, seq))."""
        s = self._s
        pool = self._need()
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
                    self.schema,
                    batch.party,
                )
                row = await conn.fetchrow(
                    f"SELECT seq, hash FROM {s}.heads WHERE party = $1",  # noqa: S608
                    batch.party,
                )
                head = (int(row["seq"]), str(row["hash"])) if row else None
                plan = plan_ingest(batch.party, head, batch.records, at)
                outcome = IngestOutcome(findings=[*plan.findings, *rejected])
                if plan.fresh:
                    await conn.executemany(
                        self._insert, [codec.audit_values(r, codec.as_is) for r in plan.fresh]
                    )
                outcome.stored = len(plan.fresh)
                for record in plan.late:
                    status = await conn.execute(
                        self._insert + " ON CONFLICT DO NOTHING",
                        *codec.audit_values(record, codec.as_is),
                    )
                    added = int(status.rsplit(" ", 1)[-1])
                    outcome.stored += added
                    outcome.duplicates += 1 - added
                    if not added:
                        await self._compare(conn, record, at, outcome)
                if plan.head is not None:
                    await conn.execute(self._set_head, batch.party, *plan.head)
                for body in batch.checkpoints:
                    await conn.execute(
                        f"INSERT INTO {s}.checkpoints (party, seq, body) "  # noqa: S608
                        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        batch.party,
                        parse_checkpoint(body).seq,
                        body,
                    )
                if batch.envelopes:
                    await conn.executemany(
                        f"INSERT INTO {s}.envelopes (digest, wire) VALUES ($1, $2) "  # noqa: S608
                        "ON CONFLICT DO NOTHING",
                        list(batch.envelopes.items()),
                    )
                if outcome.findings:
                    await conn.executemany(
                        self._insert_finding,
                        [(f.party, f.seq, f.kind, f.detail, f.found_at) for f in outcome.findings],
                    )
        except (StoreError, ValueError):
            raise
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot write the central audit store at {self._where()}: {exc}"
            ) from exc
        return outcome

    async def _compare(
        self, conn: asyncpg.Connection, record: AuditRecord, at: datetime, outcome: IngestOutcome
    ) -> None:
        """A record for a seq already stored: the same is a redelivery, another a conflict."""
        stored = await conn.fetchval(
            f"SELECT hash FROM {self._s}.records WHERE party = $1 AND seq = $2",  # noqa: S608
            record.party,
            record.seq,
        )
        if stored is None or stored == record.hash:
            return
        status = await conn.execute(
            self._insert_conflict, *codec.audit_values(record, codec.as_is), at
        )
        if status.endswith(" 1"):
            outcome.findings.append(conflict_finding(record, at))

    async def append(self, party: str, event: AuditEvent, at: datetime) -> AuditRecord:
        """Link ``event`` to ``party``'s chain after its head, in one transaction."""
        try:
            async with self._need().acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", self.schema, party
                )
                row = await conn.fetchrow(
                    f"SELECT seq, hash FROM {self._s}.heads WHERE party = $1",  # noqa: S608
                    party,
                )
                seq, prev = (int(row["seq"]), str(row["hash"])) if row else (0, GENESIS_HASH)
                record = link(seq + 1, at, party, event, prev)
                await conn.execute(self._insert, *codec.audit_values(record, codec.as_is))
                await conn.execute(self._set_head, party, record.seq, record.hash)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot write the central audit store at {self._where()}: {exc}"
            ) from exc
        return record

    async def check_writable(self) -> None:
        """Run an update that matches no row and roll back: a read-only server, standby or
        role refuses it all the same.

        Raises:
            StoreError (store-error): not open. StoreUnavailable (store-unavailable):
                unreachable or read-only.
        """
        pool = self._need()
        try:
            async with pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    await conn.execute(self._touch)
                finally:
                    await transaction.rollback()
        except Exception as exc:
            raise StoreUnavailable(
                f"the central audit store at {self._where()} is not writable: {exc}"
            ) from None

    async def add_findings(self, findings: Sequence[Finding]) -> None:
        """Store findings that came with no records (a refused batch)."""
        async with self._need().acquire() as conn, conn.transaction():
            await conn.executemany(
                self._insert_finding,
                [(f.party, f.seq, f.kind, f.detail, f.found_at) for f in findings],
            )

    async def conflicts(self, party: str | None = None) -> Sequence[AuditRecord]:
        """Second, different records offered for stored seqs, kept as evidence; by party, seq."""
        columns = ", ".join(codec.AUDIT_COLUMNS)
        sql = f"SELECT {columns} FROM {self._s}.conflicts"  # noqa: S608
        rows = await (
            self._fetch(sql + " WHERE party = $1 ORDER BY seq", party)
            if party
            else self._fetch(sql + " ORDER BY party, seq")
        )
        return [codec.audit_record(r, codec.as_is) for r in rows]

    async def load(self, records: Sequence[AuditRecord]) -> None:
        """Append records without checks (COPY); moves the parties' heads."""
        heads: dict[str, tuple[int, str]] = {}
        for r in records:
            if r.seq > heads.get(r.party, (0, ""))[0]:
                heads[r.party] = (r.seq, r.hash)
        async with self._need().acquire() as conn, conn.transaction():
            await conn.copy_records_to_table(
                "records",
                schema_name=self.schema,
                columns=list(codec.AUDIT_COLUMNS),
                records=[codec.audit_values(r, codec.as_is) for r in records],
            )
            await conn.executemany(self._set_head, [(p, s, h) for p, (s, h) in heads.items()])
        async with self._need().acquire() as conn:
            await conn.execute(f"ANALYZE {self._s}.records")  # fresh statistics for the planner

    async def parties(self) -> Sequence[str]:
        """Every party with a head, sorted."""
        rows = await self._fetch(f"SELECT party FROM {self._s}.heads ORDER BY party")  # noqa: S608
        return [str(r[0]) for r in rows]

    async def head(self, party: str) -> tuple[int, str] | None:
        """The highest (seq, hash) received from ``party``."""
        rows = await self._fetch(
            f"SELECT seq, hash FROM {self._s}.heads WHERE party = $1",  # noqa: S608
            party,
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    async def records(
        self, party: str, since_seq: int = 0, limit: int = 10_000
    ) -> Sequence[AuditRecord]:
        """A party's records with seq > since_seq, in seq order."""
        rows = await self._fetch(
            f"{self._select} WHERE party = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            party,
            since_seq,
            limit,
        )
        return [codec.audit_record(r, codec.as_is) for r in rows]

    async def checkpoints(self, party: str) -> Sequence[bytes]:
        """A party's checkpoint documents, in seq order."""
        rows = await self._fetch(
            f"SELECT body FROM {self._s}.checkpoints WHERE party = $1 ORDER BY seq",  # noqa: S608
            party,
        )
        return [bytes(r[0]) for r in rows]

    async def related(self, ids: Sequence[str]) -> Sequence[AuditRecord]:
        """Records whose message_id or correlation_id is one of ``ids``."""
        if not ids:
            return []
        rows = await self._fetch(
            f"{self._select} WHERE message_id = ANY($1::text[]) "
            "UNION ALL "
            f"{self._select} WHERE correlation_id = ANY($1::text[]) "
            "AND NOT (message_id = ANY($1::text[]))",
            list(ids),
        )
        return [codec.audit_record(r, codec.as_is) for r in rows]

    async def by_case(self, case_id: str) -> Sequence[AuditRecord]:
        """Every record of a case."""
        rows = await self._fetch(f"{self._select} WHERE case_id = $1", case_id)
        return [codec.audit_record(r, codec.as_is) for r in rows]

    async def traced(self, ident: str) -> Sequence[AuditRecord]:
        """What a trace of ``ident`` shows, in one statement."""
        rows = await self._fetch(self._traced, ident)
        return [codec.audit_record(r, codec.as_is) for r in rows]

    async def findings(self, party: str | None = None) -> Sequence[Finding]:
        """Findings on arrival, oldest first."""
        sql = f"SELECT party, seq, kind, detail, found_at FROM {self._s}.findings"  # noqa: S608
        rows = await (
            self._fetch(sql + " WHERE party = $1 ORDER BY id", party)
            if party
            else self._fetch(sql + " ORDER BY id")
        )
        return [Finding(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def envelope(self, digest: str) -> bytes | None:
        """The archived wire bytes with this digest, or None (hashed again on the way out)."""
        rows = await self._fetch(
            f"SELECT wire FROM {self._s}.envelopes WHERE digest = $1",  # noqa: S608
            digest,
        )
        return checked(digest, bytes(rows[0][0])) if rows else None

    async def search(
        self, query: RecordQuery, *, offset: int = 0, limit: int = 50
    ) -> Sequence[AuditRecord]:
        """Records matching ``query``, newest first, one page."""
        where: list[str] = []
        params: list[Any] = []

        def mark(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        if query.message_id is not None:
            m = mark(query.message_id)
            where.append(f"(message_id = {m} OR correlation_id = {m})")
        for column in ("case_id", "party", "service"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = {mark(value)}")
        if query.events:
            where.append(f"event = ANY({mark(list(query.events))}::text[])")
        if query.since is not None:
            where.append(f"at >= {mark(query.since)}")
        if query.until is not None:
            where.append(f"at <= {mark(query.until)}")
        sql = self._select + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += f" ORDER BY at DESC, party, seq DESC LIMIT {mark(limit)} OFFSET {mark(offset)}"
        rows = await self._fetch(sql, *params)
        return [codec.audit_record(r, codec.as_is) for r in rows]

    def _need(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError(f"the central audit store at {self._where()} is not open")
        return self._pool

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        pool = self._need()
        try:
            return list(await pool.fetch(sql, *args))
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {self._where()}: {exc}") from exc
