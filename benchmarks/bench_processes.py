"""Several processes per party on PostgreSQL: throughput and CPU-seconds per request.

The provider (``improvement``) runs as 1, 2 and 4 ``exchange node run`` processes sharing one
PostgreSQL store (each count by turns, ``--rounds`` times, each run on a bus prefix and
schema of its own); an in-process sender (SQLite) sends ``--requests`` requests, at most
``--window`` open at once, and waits for every answer. Printed per run and as medians of
ratios to the 1-process run of the same round: throughput (answers/s) and the provider
processes' CPU-seconds per request (user + system from /proc, and user alone; PostgreSQL's and
the broker's own CPU are not counted). Targets with 2 processes: CPU/request <= 1.1x,
throughput >= 0.9x.
Run with ``python benchmarks/bench_processes.py [--requests N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika

from exchange._clock import SystemClock
from exchange._logging import configure_logging
from exchange.config import Settings
from exchange.node import IncomingRequest, Node, build_node
from exchange.node.factory import store_schema
from exchange.signing import WireFormat
from exchange.testing import ThrowawayPKI, exchange_env
from exchange.transport.names import BusNames
from exchange.transport.topology import remove_topology

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DSN = "postgresql://postgres@127.0.0.1:5432/test"
HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
PARTIES = ("single-center", "improvement", "land-property")
PAYLOAD: dict[str, Any] = {
    "applicant": {"name": "Bench"},
    "address": "Kazan",
    "trees": [{"species": "oak", "count": 1}],
}
TICK = os.sysconf("SC_CLK_TCK")


def register(node: Node) -> None:
    """The providers' handler (``--handlers bench_processes:register``): grant at once."""

    @node.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        return {"decision": "granted", "permit_number": request.message_id}


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def _cpu(processes: list[subprocess.Popen[bytes]]) -> tuple[float, float]:
    times = [cpu_seconds(p.pid) for p in processes]
    return sum(user for user, _ in times), sum(system for _, system in times)


@dataclass
class Run:
    """One measured run: ``processes`` providers, ``rate`` answers/s, CPU-s per request
    (user + system, and user alone: the kernel's share grows with contention for cores)."""

    processes: int
    rate: float
    cpu: float
    user: float


async def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process; read if it fails
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchange.cli",
            "node",
            "run",
            "improvement",
            "--handlers",
            "bench_processes:register",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
    if line.strip() != b"ready improvement":
        process.kill()
        log.seek(0)
        tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"a provider process did not start: {line!r}; " + " | ".join(tail))
    return process


async def _send(sender: Node, count: int, window: int) -> None:
    slots = asyncio.Semaphore(window)

    async def one() -> None:
        async with slots:
            request_id = await sender.request(
                "tree-felling-permit", PAYLOAD, wire_format=WireFormat.JSON
            )
            notice = await sender.wait_answer(request_id, timeout=300)
            if notice.kind != "response":
                raise RuntimeError(f"{request_id}: {notice.kind}")

    await asyncio.gather(*(one() for _ in range(count)))


async def run_once(base: Settings, work: Path, processes: int, count: int, window: int) -> Run:
    """Start ``processes`` providers on a fresh prefix and schema, send, measure, clean up."""
    prefix = f"bp{uuid.uuid4().hex[:8]}."
    settings = base.model_copy(update={"bus_prefix": prefix, "store_dir": work / prefix})
    env = exchange_env(
        settings,
        EXCHANGE_STORE_DSN=DSN,
        EXCHANGE_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    )
    started: list[subprocess.Popen[bytes]] = []
    sender = build_node("single-center", settings)
    try:
        started.append(await _start(env))  # the first declares the topology and the schema
        started += await asyncio.gather(*(_start(env) for _ in range(processes - 1)))
        await sender.start()
        await _send(sender, 20, window)  # warm: connections, caches, first statements
        user0, system0 = _cpu(started)
        t0 = time.perf_counter()
        await _send(sender, count, window)
        elapsed = time.perf_counter() - t0
        user, system = _cpu(started)
        user, system = user - user0, system - system0
        return Run(processes, count / elapsed, (user + system) / count, user / count)
    finally:
        await sender.stop()
        for process in started:
            process.terminate()
        for process in started:
            process.wait(30)
        await _clean(prefix, store_schema(settings, "improvement"))


async def _clean(prefix: str, schema: str) -> None:
    import asyncpg

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await remove_topology(await connection.channel(), BusNames(prefix), PARTIES)
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def main(count: int, rounds: int, window: int, counts: tuple[int, ...]) -> None:
    """Alternate the process counts ``rounds`` times; print each run and the ratios."""
    configure_logging("WARNING")
    work = Path(tempfile.mkdtemp(prefix="bench-processes-"))
    pki = ThrowawayPKI.create(work / "pki", PARTIES[:2], SystemClock())
    base = Settings(
        certs_dir=pki.path,
        schemas_dir=DATA / "schemas",
        catalog=DATA / "catalog.toml",
        amqp_url=AMQP_URL,
        store_dir=work,
        store_dsn=None,
    )
    print(
        f"N={count} requests per run, W={window} open, provider processes {counts} on "
        f"PostgreSQL by turns, {rounds} rounds; CPU = provider processes' user+system "
        f"(cores: {os.cpu_count()}, shared with the broker, the database and other work)"
    )
    ratios: dict[int, list[tuple[float, float, float]]] = {n: [] for n in counts}
    for round_ in range(1, rounds + 1):
        runs = {n: await run_once(base, work, n, count, window) for n in counts}
        base_run = runs[counts[0]]
        for n, run in runs.items():
            ratios[n].append(
                (run.rate / base_run.rate, run.cpu / base_run.cpu, run.user / base_run.user)
            )
            print(
                f"round {round_} processes={n}: {run.rate:7.1f} answers/s, "
                f"{run.cpu * 1000:6.2f} ms CPU/request ({run.user * 1000:.2f} ms user)"
            )
    for n in counts[1:]:
        rate, cpu, user = (statistics.median(r[i] for r in ratios[n]) for i in range(3))
        target = "  (target with 2: throughput >= 0.9x, CPU <= 1.1x)" if n == 2 else ""
        print(
            f"processes={n} vs {counts[0]} (median of {rounds}): throughput {rate:.2f}x, "
            f"CPU/request {cpu:.2f}x (user alone {user:.2f}x){target}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument(
        "--processes", default="1,2,4", help="provider process counts, comma-separated"
    )
    args = parser.parse_args()
    counts = tuple(int(n) for n in args.processes.split(","))
    asyncio.run(main(args.requests, args.rounds, args.window, counts))
