"""The test database and schemas of a test's own (PostgreSQL at 127.0.0.1, trust auth)."""

from __future__ import annotations

import asyncpg

DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def schemas_like(prefix: str) -> list[str]:
    """Names of the schemas that start with ``prefix``, sorted."""
    conn = await asyncpg.connect(DSN)
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%"
        )
        return sorted(row[0] for row in rows)
    finally:
        await conn.close()


async def drop_schemas(prefix: str) -> None:
    """Drop every schema whose name starts with ``prefix``."""
    names = await schemas_like(prefix)
    conn = await asyncpg.connect(DSN)
    try:
        for name in names:
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()
