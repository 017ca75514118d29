"""Our full bus path beside raw aio-pika, on the same broker, in one run.

Raw baseline: a quorum queue, persistent mandatory messages of the size of our signed request,
publisher confirms with ``W`` publishes in flight, manual acks; messages/s from the first
publish until the consumer acked the last.

Ours: two nodes (``single-center`` -> ``improvement``) with SQLite stores (``synchronous=FULL``),
or both on PostgreSQL; ``N`` requests with
``W`` in flight through ``Node.request``; envelopes/s (each request and each receipt is one
envelope: signed, stored with its audit event, published with a confirm, verified, stored
and audited on the other side) from the first request until the sender has every receipt.
Each arrangement runs ``TRIALS`` times, each run right after a raw run with messages of our
request's size, and the ratio printed is the median of those pairs' ratios: the machine's
speed drifts between runs, and a pair a few seconds apart sees the same moment of it.
Beside each, the ratio to the best raw aio-pika this machine does (``raw_best``: publisher and
consumer in processes of their own, large confirm window and prefetch): the physical limit.
Then request-to-receipt latency at a steady pace of half our measured rate, with both nodes
in one process and with the provider in its own (as deployed), each right after raw aio-pika's
at the same pace (a request and a receipt, each published with a confirm): how much of the
tail is ours and how much the broker's and the disk's.

Targets (issue 17), for the provider in its own process: XML >= 0.45 and JSON >= 0.55 of raw
with SQLite stores, >= 0.30 with both parties on PostgreSQL; latency p50 <= 2.5x raw's.
Prints the numbers and the ratios; no assertion (timings are noisy here). Run with
``.venv/bin/python benchmarks/bench_bus.py [N] [W]`` or ``make bench``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from raw_best import PREFETCH as BEST_PREFETCH
from raw_best import WINDOW as BEST_WINDOW
from raw_best import best_raw

from exchange._clock import SystemClock
from exchange._logging import configure_logging
from exchange.config import Settings
from exchange.envelope.model import Kind, ServiceRef
from exchange.node import IncomingRequest, Node, NodeConfig, Notice, build_node
from exchange.node.factory import store_schema
from exchange.signing import WireFormat
from exchange.testing import ThrowawayPKI, exchange_env
from exchange.transport.names import BusNames
from exchange.transport.topology import remove_topology

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
PARTIES = ("single-center", "improvement", "land-property")  # every party of the test catalog
SERVICE = "tree-felling-permit"
TARGET_REQUEST_BYTES = 2560  # a signed XML request of about 2.5 KiB
PREFETCH = 32  # what exchange.transport.Bus uses
DSN = "postgresql://postgres@127.0.0.1:5432/test"
# Ours/raw, the provider in its own process (issue 17); in one process there is no target.
TARGETS = {WireFormat.XML: 0.45, WireFormat.JSON: 0.55}
POSTGRES_TARGET = 0.30  # both parties on PostgreSQL, either wire format
P50_TARGET = 2.5  # latency p50 ours/raw at half our maximum rate
TRIALS = 3  # pairs of raw and ours per arrangement; the ratio printed is their median
LATENCY_SECONDS = 10.0  # long enough that p99 is not just the few worst samples

# Fast polling like the bus tests; receipt time-outs long enough that no request is resent
# merely because the benchmark keeps the nodes busy.
CONFIG = NodeConfig(
    receipt_timeouts=(30.0, 60.0),
    handler_retry_delays=(0.1, 0.2),
    publish_grace=5.0,
    poll_interval=0.05,
)


def _payload(reason_chars: int, wire_format: WireFormat) -> dict[str, Any]:
    count: int | str = "2" if wire_format is WireFormat.XML else 2  # XML carries no numbers
    return {
        "applicant": {"name": "Gulnara Safina", "phone": "+7 843 000-00-00"},
        "address": "Kazan, ul. Pushkina 12",
        "trees": [{"species": "birch", "count": count}],
        "reason": ("Emergency birch over a playground; two lindens replanted. " * 64)[
            :reason_chars
        ],
    }


@dataclass
class Sizes:
    """Wire sizes of our envelopes, and the payload length that gives the target size."""

    reason_chars: int
    request: dict[WireFormat, int]
    receipt: dict[WireFormat, int]


def _measure_sizes(node: Node) -> Sizes:
    """Size the payload so a signed XML request is about TARGET_REQUEST_BYTES."""

    def signed(kind: Kind, wire_format: WireFormat, reason_chars: int) -> int:
        entry = node.ctx.catalog.service(SERVICE)
        envelope = node.outbound.envelope(
            kind,
            service=ServiceRef(code=entry.code, version=entry.version),
            recipient=entry.provider,
            expires_at=node.ctx.clock.now() + CONFIG.request_ttl,
            case_id="KZN-BENCH-000001",
            payload=_payload(reason_chars, wire_format) if kind is Kind.REQUEST else None,
            answering=None if kind is Kind.REQUEST else ("0" * 32, "0" * 64),
        )
        return len(node.outbound.seal(envelope, wire_format).wire)

    base = signed(Kind.REQUEST, WireFormat.XML, 0)
    reason = max(0, TARGET_REQUEST_BYTES - base)
    return Sizes(
        reason,
        {f: signed(Kind.REQUEST, f, reason) for f in WireFormat},
        {f: signed(Kind.RECEIPT, f, 0) for f in WireFormat},
    )


# --- raw aio-pika --------------------------------------------------------------------------


async def raw_baseline(prefix: str, count: int, window: int, size: int) -> float:
    """Messages/s of plain aio-pika: confirmed, persistent, mandatory, manual ack."""
    exchange_name, queue_name = f"{prefix}raw", f"{prefix}raw.queue"
    publisher = await aio_pika.connect(AMQP_URL)
    consumer = await aio_pika.connect(AMQP_URL)
    try:
        pub_channel = await publisher.channel(publisher_confirms=True, on_return_raises=True)
        con_channel = await consumer.channel(publisher_confirms=False)
        await con_channel.set_qos(prefetch_count=PREFETCH)
        exchange = await pub_channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await con_channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(exchange_name, routing_key="raw")
        body = b"x" * size
        acked = 0
        done = asyncio.Event()

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal acked
            await message.ack()
            acked += 1
            if acked == count:
                done.set()

        await queue.consume(on_message, no_ack=False)
        slots = asyncio.Semaphore(window)

        async def publish() -> None:
            async with slots:
                message = aio_pika.Message(
                    body,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/xml",
                    type="request",
                    message_id=uuid.uuid4().hex,
                )
                await exchange.publish(message, "raw", mandatory=True, timeout=10)

        start = time.perf_counter()
        await asyncio.gather(*(publish() for _ in range(count)))
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - start
        return count / elapsed
    finally:
        await consumer.close()
        await publisher.close()


async def raw_latency(
    prefix: str, rate: float, request_size: int, receipt_size: int
) -> list[float]:
    """Request-to-receipt latencies (ms) of plain aio-pika at a steady ``rate`` per second.

    Our path's two hops without our work: the sender publishes a request (confirmed,
    persistent, quorum queue); the provider publishes a receipt back (the same) and then
    acks the request; the sender's latency ends when the receipt arrives. What the broker
    and this machine's disk cost alone, at the same pace and in the same run as ours.
    """
    sender = await aio_pika.connect(AMQP_URL)
    provider = await aio_pika.connect(AMQP_URL)
    try:
        sender_channel = await sender.channel(publisher_confirms=True, on_return_raises=True)
        provider_channel = await provider.channel(publisher_confirms=True, on_return_raises=True)
        for channel in (sender_channel, provider_channel):
            await channel.set_qos(prefetch_count=PREFETCH)
        requests = await provider_channel.declare_queue(
            f"{prefix}raw.requests", durable=True, arguments={"x-queue-type": "quorum"}
        )
        receipts = await sender_channel.declare_queue(
            f"{prefix}raw.receipts", durable=True, arguments={"x-queue-type": "quorum"}
        )
        receipt_body = b"r" * receipt_size

        async def on_request(message: AbstractIncomingMessage) -> None:
            receipt = aio_pika.Message(
                receipt_body,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                correlation_id=message.message_id,
            )
            await provider_channel.default_exchange.publish(
                receipt, receipts.name, mandatory=True, timeout=60
            )
            await message.ack()

        count = max(50, int(rate * LATENCY_SECONDS))
        started: dict[str, float] = {}
        arrived: dict[str, float] = {}
        done = asyncio.Event()

        async def on_receipt(message: AbstractIncomingMessage) -> None:
            arrived[str(message.correlation_id)] = time.perf_counter()
            await message.ack()
            if len(arrived) == count:
                done.set()

        await requests.consume(on_request, no_ack=False)
        await receipts.consume(on_receipt, no_ack=False)
        request_body = b"x" * request_size

        async def send() -> None:
            message_id = uuid.uuid4().hex
            started[message_id] = time.perf_counter()
            request = aio_pika.Message(
                request_body,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
            )
            await sender_channel.default_exchange.publish(
                request, requests.name, mandatory=True, timeout=60
            )

        await paced(count, rate, send)
        await asyncio.wait_for(done.wait(), 60)
        return sorted((arrived[m] - t0) * 1000 for m, t0 in started.items())
    finally:
        await provider.close()
        await sender.close()


async def paced(count: int, rate: float, send: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start ``count`` calls of ``send`` at a steady ``rate`` per second; wait for them all."""
    tasks: list[asyncio.Task[None]] = []
    begin = time.perf_counter()
    for i in range(count):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send()))
    await asyncio.gather(*tasks)


# --- our path ------------------------------------------------------------------------------


@dataclass
class Pair:
    """A sender and a provider node on fresh stores (the provider in-process or its own)."""

    sender: Node
    provider: Node | None
    store_dir: Path
    prefix: str
    process: subprocess.Popen[bytes] | None = None
    schemas: dict[str, str] | None = None  # party -> PostgreSQL schema, when on PostgreSQL

    async def stop(self) -> None:
        """Stop both nodes and remove the run's queues and schemas.

        At once, not at the end: hundreds of quorum queues left standing wedge a broker
        whose file limit is low (it accepts connections and never answers).
        """
        await self.sender.stop()
        if self.provider is not None:
            await self.provider.stop()
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            await remove_topology(await connection.channel(), BusNames(self.prefix), PARTIES)
        if self.schemas is not None:
            pg = await asyncpg.connect(DSN)
            try:
                for schema in self.schemas.values():
                    await pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await pg.close()

    async def audit_counts(self) -> dict[str, int]:
        """Audit events by name, both stores together (e.g. resends and duplicates)."""
        counts: dict[str, int] = {}
        query = "SELECT event, count(*) FROM {audit} GROUP BY event"
        for party in ("single-center", "improvement"):
            if self.schemas is None:
                with contextlib.closing(sqlite3.connect(self.store_dir / f"{party}.db")) as conn:
                    rows = conn.execute(query.format(audit="audit")).fetchall()
            else:
                pg = await asyncpg.connect(DSN)
                try:
                    rows = await pg.fetch(query.format(audit=f'"{self.schemas[party]}".audit'))
                finally:
                    await pg.close()
            for event, n in rows:
                counts[event] = counts.get(event, 0) + int(n)
        return counts


async def start_pair(
    settings: Settings, run: str, *, split: bool = False, postgres: bool = False
) -> Pair:
    """Start both nodes on stores and broker names of ``run``'s own (on PostgreSQL: schemas).

    Each run gets its own names, so nothing a previous run left in flight (e.g. receipts of
    duplicates) reaches it.
    """
    store_dir = settings.store_dir / run
    prefix = f"{settings.bus_prefix}{run}."
    update: dict[str, Any] = {"store_dir": store_dir, "bus_prefix": prefix}
    if postgres:
        update["store_dsn"] = DSN
    run_settings = settings.model_copy(update=update)
    schemas = None
    if postgres:
        schemas = {p: store_schema(run_settings, p) for p in ("single-center", "improvement")}
    if split:
        process = await _provider_process(run_settings)
        sender = build_node("single-center", run_settings, config=CONFIG)
        await sender.start()
        return Pair(sender, None, store_dir, prefix, process, schemas)
    provider = build_node("improvement", run_settings, config=CONFIG)
    await provider.start()
    sender = build_node("single-center", run_settings, config=CONFIG)
    await sender.start()
    return Pair(sender, provider, store_dir, prefix, schemas=schemas)


async def _provider_process(settings: Settings) -> subprocess.Popen[bytes]:
    """``exchange node run improvement`` as its own process: each party its own, as deployed."""
    # WARNING, as the in-process nodes of this benchmark log.
    extra = {"EXCHANGE_STORE_DSN": settings.store_dsn} if settings.store_dsn else {}
    env = exchange_env(settings, EXCHANGE_LOG_LEVEL="WARNING", **extra)
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "node", "run", "improvement"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
    if line.strip() != b"ready improvement":
        raise RuntimeError(f"the provider process did not start: {line!r}")
    return process


class Arrivals:
    """When each request's notice of ``kind`` arrived; a waiter for the first ``n`` of them."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.at: dict[str, float] = {}
        self._target = 0
        self._done = asyncio.Event()

    def expect(self, n: int) -> None:
        """Wait for ``n`` notices from now on."""
        self.at.clear()
        self._target = n
        self._done.clear()

    def __call__(self, notice: Notice) -> None:
        if notice.kind == self.kind and notice.request_id not in self.at:
            self.at[notice.request_id] = time.perf_counter()
            if len(self.at) >= self._target:
                self._done.set()

    async def wait(self, timeout: float) -> None:
        """Wait until every expected notice arrived."""
        await asyncio.wait_for(self._done.wait(), timeout)


async def ours(
    settings: Settings,
    wire_format: WireFormat,
    count: int,
    window: int,
    reason_chars: int,
    *,
    handler: bool = False,
    split: bool = False,
    postgres: bool = False,
    trial: int = 0,
) -> tuple[float, dict[str, int]]:
    """Envelopes/s through two nodes; with ``handler`` a trivial response is counted too.

    With ``split`` the provider runs as its own process (no handler there); with
    ``postgres`` both stores are on PostgreSQL.
    """
    arrangement = (
        f"{'handler' if handler else 'plain'}{'-split' if split else ''}{'-pg' if postgres else ''}"
    )
    run = f"{wire_format.value}-{arrangement}-{trial}"
    pair = await start_pair(settings, run, split=split, postgres=postgres)
    try:
        if handler:
            assert pair.provider is not None

            @pair.provider.handler(SERVICE)
            async def grant(request: IncomingRequest) -> dict[str, Any]:
                return {"decision": "granted", "permit_number": "TF-1"}

        arrivals = Arrivals("response" if handler else "receipt")
        pair.sender.on_notice(arrivals)
        payload = _payload(reason_chars, wire_format)
        await _warm_up(pair, arrivals, payload, wire_format)
        arrivals.expect(count)
        slots = asyncio.Semaphore(window)

        async def send() -> None:
            async with slots:
                await pair.sender.request(SERVICE, payload, wire_format=wire_format)

        start = time.perf_counter()
        await asyncio.gather(*(send() for _ in range(count)))
        await arrivals.wait(120)
        elapsed = max(arrivals.at.values()) - start
        envelopes = count * (3 if handler else 2)
        return envelopes / elapsed, await pair.audit_counts()
    finally:
        await pair.stop()


async def _warm_up(
    pair: Pair, arrivals: Arrivals, payload: dict[str, Any], wire_format: WireFormat
) -> None:
    """A few requests first: connections, caches and schemas are warm before timing."""
    arrivals.expect(8)
    await asyncio.gather(
        *(pair.sender.request(SERVICE, payload, wire_format=wire_format) for _ in range(8))
    )
    await arrivals.wait(30)


async def latency(
    settings: Settings,
    wire_format: WireFormat,
    rate: float,
    reason_chars: int,
    *,
    split: bool = False,
) -> list[float]:
    """Request-to-receipt latencies (ms) of requests sent at a fixed ``rate`` per second.

    With ``split`` the provider runs as its own process.
    """
    run = f"{wire_format.value}-latency{'-split' if split else ''}"
    pair = await start_pair(settings, run, split=split)
    try:
        arrivals = Arrivals("receipt")
        pair.sender.on_notice(arrivals)
        payload = _payload(reason_chars, wire_format)
        await _warm_up(pair, arrivals, payload, wire_format)
        count = max(50, int(rate * LATENCY_SECONDS))
        arrivals.expect(count)
        started: dict[str, float] = {}

        async def send() -> None:
            t0 = time.perf_counter()
            request_id = await pair.sender.request(SERVICE, payload, wire_format=wire_format)
            started[request_id] = t0

        await paced(count, rate, send)
        await arrivals.wait(60)
        return sorted((arrivals.at[m] - t0) * 1000 for m, t0 in started.items())
    finally:
        await pair.stop()


def _percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def _summary(samples: list[float]) -> str:
    return (
        f"p50 {_percentile(samples, 50):5.1f} ms  p99 {_percentile(samples, 99):5.1f} ms  "
        f"max {samples[-1]:5.1f} ms  mean {statistics.fmean(samples):5.1f} ms"
    )


@dataclass
class Paired:
    """Runs of ours, each right after a raw aio-pika run of its own."""

    raw: list[float]
    ours: list[float]
    counts: dict[str, int]

    @property
    def rate(self) -> float:
        """Our median envelopes/s."""
        return statistics.median(self.ours)

    @property
    def ratios(self) -> list[float]:
        """Ours/raw of each pair: a slow moment of the shared machine slows both of a pair."""
        return [o / r for o, r in zip(self.ours, self.raw, strict=True)]

    def line(self, what: str, envelopes_per_request: int, target: float | None, best: float) -> str:
        """One printed line: median rate, median ratio against its target, every run behind
        them, and the ratio to the best raw configuration (messages/s ``best``)."""
        runs = " / ".join(f"{o:.0f}:{r:.0f}" for o, r in zip(self.ours, self.raw, strict=True))
        ratio = statistics.median(self.ratios)
        verdict = (
            "no target"
            if target is None
            else f"target >= {target:.2f}: " + ("met" if ratio >= target else "NOT met")
        )
        return (
            f"ours {what}: {self.rate:6.0f} envelopes/s "
            f"({self.rate / envelopes_per_request:.0f} requests/s)  "
            f"ratio ours/raw {ratio:.2f} ({verdict}; median of {_join(self.ratios)}; "
            f"runs ours:raw {runs}); ours/best raw {self.rate / best:.2f}  {_extra(self.counts)}"
        )


async def paired(
    settings: Settings,
    sizes: Sizes,
    wire_format: WireFormat,
    count: int,
    window: int,
    *,
    trials: int = TRIALS,
    handler: bool = False,
    split: bool = False,
    postgres: bool = False,
) -> Paired:
    """``trials`` runs of ours, each right after raw aio-pika with messages of our size."""
    result = Paired([], [], {})
    for trial in range(trials):
        result.raw.append(
            await raw_baseline(settings.bus_prefix, 2 * count, window, sizes.request[wire_format])
        )
        rate, counts = await ours(
            settings,
            wire_format,
            count,
            window,
            sizes.reason_chars,
            handler=handler,
            split=split,
            postgres=postgres,
            trial=trial,
        )
        result.ours.append(rate)
        for event, n in counts.items():
            result.counts[event] = result.counts.get(event, 0) + n
    return result


def _join(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


async def _best_raw(prefix: str, count: int, size: int) -> float:
    """The median of ``TRIALS`` runs of the best raw configuration (in other processes)."""
    runs = [
        await asyncio.to_thread(best_raw, AMQP_URL, f"{prefix}raw.best", count, size)
        for _ in range(TRIALS)
    ]
    return statistics.median(runs)


async def delete_topology(prefix: str) -> None:
    """Remove the raw baselines' queues and exchange (each run of ours removes its own)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in ("queue", "requests", "receipts"):
            await channel.queue_delete(f"{prefix}raw.{queue}")
        await channel.exchange_delete(f"{prefix}raw")


def bench_settings(work: Path, prefix: str) -> Settings:
    """A throwaway PKI of the two parties under ``work`` and settings on it: the test
    catalog, this machine's broker, SQLite stores under ``work``, bus prefix ``prefix``."""
    pki = ThrowawayPKI.create(work / "pki", PARTIES[:2], SystemClock())
    return Settings(
        certs_dir=pki.path,
        schemas_dir=DATA / "schemas",
        catalog=DATA / "catalog.toml",
        amqp_url=AMQP_URL,
        bus_prefix=prefix,
        store_dir=work / "stores",
        store_dsn=None,
    )


async def main(count: int, window: int) -> None:
    """Run everything against one broker under a prefix of this run's own."""
    configure_logging("WARNING")
    began = time.perf_counter()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    work = Path(tempfile.mkdtemp(prefix="bench-bus-"))
    try:
        settings = bench_settings(work, prefix)
        sizes = _measure_sizes(build_node("single-center", settings, config=CONFIG))
        xml, json = WireFormat.XML, WireFormat.JSON
        print(f"N={count} requests, W={window} in flight, prefetch {PREFETCH}, prefix {prefix}")
        print(
            f"signed envelope bytes: request XML {sizes.request[xml]} / JSON "
            f"{sizes.request[json]}, receipt XML {sizes.receipt[xml]} / JSON {sizes.receipt[json]}"
        )

        # The machine's speed drifts from minute to minute (shared disk, noisy neighbours):
        # so raw and ours run by turns, and each ratio compares runs a few seconds apart.
        print(
            f"raw aio-pika: {2 * count} msgs of our request's size per run; quorum, persistent, "
            f"confirms, mandatory, manual ack; run right before each run of ours"
        )
        best = {f: await _best_raw(prefix, 2 * count, sizes.request[f]) for f in (xml, json)}
        for wire_format, rate in best.items():
            print(
                f"best raw aio-pika ({wire_format.value.upper()} size; publisher and consumer "
                f"in processes of their own, window {BEST_WINDOW}, prefetch "
                f"{BEST_PREFETCH}; median of {TRIALS}): {rate:6.0f} msgs/s"
            )
        throughput: dict[tuple[WireFormat, bool], Paired] = {}
        for split, postgres in ((False, False), (True, False), (True, True)):
            for wire_format in (xml, json):
                result = await paired(
                    settings, sizes, wire_format, count, window, split=split, postgres=postgres
                )
                if not postgres:
                    throughput[wire_format, split] = result
                target = (POSTGRES_TARGET if postgres else TARGETS[wire_format]) if split else None
                where = ", provider in its own process" if split else ""
                where += ", both on PostgreSQL" if postgres else ""
                label = f"{wire_format.value.upper():<4} request+receipt{where}"
                print(result.line(label, 2, target, best[wire_format]))
        handled = await paired(settings, sizes, xml, count, window, trials=1, handler=True)
        print(handled.line("XML  request+receipt+response (trivial handler)", 3, None, best[xml]))
        for split in (False, True):
            for wire_format in (xml, json):
                # Half our max rate (in requests/s) in that arrangement of the processes.
                pace = throughput[wire_format, split].rate / 2 / 2
                # Right before ours, so both see the same moment of the shared disk.
                raw_samples = await raw_latency(
                    prefix, pace, sizes.request[wire_format], sizes.receipt[wire_format]
                )
                samples = await latency(
                    settings, wire_format, pace, sizes.reason_chars, split=split
                )
                where = ", provider in its own process" if split else ""
                print(
                    f"latency {wire_format.value.upper():<4} request->receipt{where} at "
                    f"{pace:.0f} req/s ({len(samples)} requests):"
                )
                p50 = _percentile(samples, 50) / _percentile(raw_samples, 50)
                p99 = _percentile(samples, 99) / _percentile(raw_samples, 99)
                verdict = "met" if p50 <= P50_TARGET else "NOT met"
                print(f"  raw aio-pika, two confirmed hops: {_summary(raw_samples)}")
                print(
                    f"  ours:                             {_summary(samples)}  "
                    f"p50 ours/raw {p50:.2f} (target <= {P50_TARGET:.1f}: {verdict}); "
                    f"p99 ours/raw {p99:.2f} (no target: the disk's fsync dominates p99)"
                )
    finally:
        await delete_topology(prefix)
        shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.perf_counter() - began:.0f} s")


def _extra(counts: dict[str, int]) -> str:
    """Work beyond the one request and one receipt per request, from the audit logs."""
    return f"[audit: {counts.get('resent', 0)} resent, {counts.get('duplicate', 0)} duplicates]"


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    w = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    asyncio.run(main(n, w))
