"""Fixtures of the audit tests: PostgreSQL schemas of this session's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import asyncpg
import pytest

DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def drop_schemas(prefix: str) -> None:
    """Drop every schema whose name starts with ``prefix``."""
    conn = await asyncpg.connect(DSN)
    try:
        names = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%"
        )
        for (name,) in names:
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_prefix() -> Iterator[str]:
    """This session's schema prefix; everything under it is dropped at the end."""
    prefix = f"ta_{uuid4().hex[:10]}"
    yield prefix
    asyncio.run(drop_schemas(prefix))


@pytest.fixture
async def pg_schema(pg_prefix: str) -> AsyncIterator[str]:
    """A schema of this test's own, dropped after it."""
    name = f"{pg_prefix}_{uuid4().hex[:6]}"
    yield name
    await drop_schemas(name)
