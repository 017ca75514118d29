"""Handlers for the claims tests' node processes: every run is counted in PostgreSQL.

``CLAIMS_RUNS_TABLE`` names the table (the test creates it); each run inserts its request
id, the attempt number it was given and its process id before answering.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg

from exchange.node import IncomingRequest, Node


def register(node: Node) -> None:
    """Grant every tree-felling permit after a short piece of work, counting the run."""
    table = os.environ["CLAIMS_RUNS_TABLE"]
    dsn = os.environ["EXCHANGE_STORE_DSN"]
    pool: list[asyncpg.Pool] = []
    lock = asyncio.Lock()

    async def runs() -> asyncpg.Pool:
        async with lock:
            if not pool:
                pool.append(await asyncpg.create_pool(dsn, min_size=1, max_size=4))
        return pool[0]

    @node.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        await (await runs()).execute(
            f"INSERT INTO {table} (message_id, attempt, pid) VALUES ($1, $2, $3)",  # noqa: S608
            request.message_id,
            request.attempt,
            os.getpid(),
        )
        await asyncio.sleep(0.01)  # the handler's own work: a window for a kill to fall in
        return {"decision": "granted", "permit_number": request.message_id}
