"""The console at 1,000,000 audit records: search and case page server time against the bare
indexed trace query of the same case, side by side in one run.

For each sampled case it times, on the same central log: the bare query (``by_case``, one
indexed SELECT), the trace the CLI prints (``trace``: by case, then related ids), the
search page (``/search?case_id=``) and the case page (``/case/<id>``), each page from its
view's start to its rendered body (server time, measured by a middleware inside the
console's own). Prints medians and the ratios (target: pages at most 3x the bare query);
no assertion (timings are noisy here). Run with
``python benchmarks/bench_console.py [--records N] [--no-postgres]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from bench_audit import DSN, T0, big_store, drop_schema

from exchange._clock import FrozenClock
from exchange.audit.central import CentralStore, SQLiteCentralStore
from exchange.audit.central.postgres import PostgresCentralStore
from exchange.audit.trace import trace
from exchange.catalog import Catalog
from exchange.config import packaged
from exchange.console import ConsoleSettings, Role, UsersFile, create_app
from exchange.console.context import SESSION_COOKIE

PASSWORD = "benchmark password"
SAMPLES = 100
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServerTimer:
    """Seconds each page's view took, by path kind."""

    def __init__(self) -> None:
        self.last = 0.0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time the view (query and rendering)."""
        start = time.perf_counter()
        response = await handler(request)
        self.last = time.perf_counter() - start
        return response


async def _logged_in(client: TestClient[web.Request, web.Application]) -> dict[str, str]:
    response = await client.get("/login", allow_redirects=False)
    cookie = {"Cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE].value}"}
    text = await response.text()
    token = text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = await client.post(
        "/login",
        data={"user": "bench", "password": PASSWORD, "csrf": token},
        headers=cookie,
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return {"Cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE].value}"}


async def measure(central: CentralStore, total: int, users: Path) -> dict[str, float]:
    """Median milliseconds of the bare query, trace, search page and case page."""
    catalog = Catalog.load(packaged("catalog.toml"), packaged("schemas"))
    clock = FrozenClock(T0 + timedelta(days=1))
    settings = ConsoleSettings(users=users, secure_cookies=False)
    app = create_app(central, catalog, Path(tempfile.gettempdir()), clock, settings)
    timer = ServerTimer()
    app.middlewares.append(timer.middleware)  # inside the console's guard: the view alone
    client: TestClient[web.Request, web.Application] = TestClient(
        TestServer(app), cookie_jar=DummyCookieJar()
    )
    await client.start_server()
    times: dict[str, list[float]] = {"bare": [], "trace": [], "search": [], "case": []}
    try:
        headers = await _logged_in(client)
        rng = random.Random(11)
        for _ in range(SAMPLES):
            case = f"KZN-{rng.randrange(total) // 10:07d}"
            start = time.perf_counter()
            assert await central.by_case(case)
            times["bare"].append(time.perf_counter() - start)
            start = time.perf_counter()
            assert (await trace(central, case, clock.now())).steps
            times["trace"].append(time.perf_counter() - start)
            for name, path in (("search", f"/search?case_id={case}"), ("case", f"/case/{case}")):
                response = await client.get(path, headers=headers, allow_redirects=False)
                assert response.status == 200, (path, response.status)
                assert case in await response.text()
                times[name].append(timer.last)
    finally:
        await client.close()
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


async def main(total: int, postgres: bool) -> None:
    """Fill each central log, measure, print."""
    prefix = f"bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        users = UsersFile(Path(tmp) / "users.json")
        users.add("bench", Role.SUPPORT, PASSWORD)
        centrals: list[tuple[str, Any]] = [("SQLite", SQLiteCentralStore(Path(tmp) / "c.db"))]
        if postgres:
            centrals.append(("PostgreSQL", PostgresCentralStore(DSN, f"{prefix}_console")))
        try:
            for name, central in centrals:
                await central.open()
                seconds = await big_store(central, total)
                print(f"load {total:,} records, {name}: {seconds:,.1f} s", flush=True)
                ms = await measure(central, total, users.path)
                print(
                    f"{name} at {total:,} records, medians of {SAMPLES} cases (ms): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in ms.items())
                )
                for page in ("search", "case"):
                    print(
                        f"  {page} page / bare query: {ms[page] / ms['bare']:.2f}x (target <= 3x); "
                        f"/ trace: {ms[page] / ms['trace']:.2f}x",
                        flush=True,
                    )
                await central.close()
        finally:
            if postgres:
                await drop_schema(prefix)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.records, not args.no_postgres))
