"""A 1 GiB attachment end to end: our nodes against raw aio-pika moving the same bytes.

Ours: a sender node (``Node.request`` with the file as an attachment) and a provider node,
each a process of its own; the time runs from the SDK call until the sender holds the
response, which the provider's handler sends once it got the request with a readable handle
on the checked file. Each node samples its own resident memory every 20 ms and prints its
peak growth over what it used once started (target < 50 MB each).

Raw: a publisher and a consumer process with aio-pika: the same file in the same chunk
size, persistent, publisher confirms with the same window, a quorum queue, the consumer
writing each chunk to a file and acking it (same prefetch). The ratio is raw seconds / our
seconds (target >= 0.5). Raw and ours run by turns, ``--rounds`` times, in the same run.
Run with ``python benchmarks/bench_attachments.py [--mib 1024] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika

from exchange._clock import SystemClock
from exchange._logging import configure_logging
from exchange.config import Settings
from exchange.node import IncomingRequest, build_node
from exchange.node.config import NodeConfig
from exchange.testing import ThrowawayPKI, exchange_env
from exchange.transport.names import BusNames
from exchange.transport.topology import remove_topology

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
HERE = Path(__file__).resolve()
DATA = HERE.parent.parent / "tests" / "data"
PARTIES = ("single-center", "improvement", "land-property")
PAYLOAD: dict[str, Any] = {
    "applicant": {"name": "Bench"},
    "address": "Kazan",
    "trees": [{"species": "oak", "count": 1}],
}
CONFIG = NodeConfig()  # the defaults: 1 MiB chunks, 8 in flight, prefetch 4
CHUNK = CONFIG.attachment_chunk
WINDOW = CONFIG.attachment_window
PREFETCH = CONFIG.attachment_prefetch


class Memory:
    """Samples this process's resident set size in a thread; peak growth over a baseline."""

    def __init__(self) -> None:
        self.baseline = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> None:
        """Take the baseline now, then sample until stopped."""
        self.baseline = self.peak = _rss()
        self._thread.start()

    def stop(self) -> int:
        """Peak growth in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak - self.baseline

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# --- the child processes ------------------------------------------------------------------


async def provider() -> None:
    """Our receiving node; answers once its handler has the request and a file handle."""
    configure_logging("WARNING")
    node = build_node("improvement", Settings(), config=CONFIG)
    memory = Memory()
    done = asyncio.Event()

    @node.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        [file] = request.attachments
        with file.open() as handle:  # a handle, as any handler reads it
            first = handle.read(4096)
            size = os.fstat(handle.fileno()).st_size
        done.set()
        return {"decision": "granted", "note": f"{size} bytes, starts {first[:4]!r}"}

    await node.start()
    memory.start()
    _say(ready="provider")
    await done.wait()
    await asyncio.sleep(1.0)  # the response is published
    growth = memory.stop()
    [sha] = node.ctx.attachments.objects()
    await node.stop()
    _say(rss_growth=growth, sha256=sha)


async def sender(path: Path) -> None:
    """Our sending node: one request with the file attached, until its response."""
    configure_logging("WARNING")
    node = build_node("single-center", Settings(), config=CONFIG)
    await node.start()
    memory = Memory()
    memory.start()
    began = time.perf_counter()
    request_id = await node.request("tree-felling-permit", PAYLOAD, attachments=[path])
    answer = await node.wait_answer(request_id, timeout=3600)
    elapsed = time.perf_counter() - began
    growth = memory.stop()
    await node.stop()
    _say(seconds=elapsed, rss_growth=growth, kind=answer.kind)


async def raw_consumer(queue: str, out: Path, size: int) -> None:
    """Raw aio-pika: consume chunks, write each to a file, ack; report when all are written."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        source = await channel.declare_queue(
            queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        memory = Memory()
        memory.start()
        _say(ready="raw-consumer")
        written = 0
        with out.open("wb") as file:
            async with source.iterator() as messages:
                async for message in messages:
                    file.write(message.body)
                    written += len(message.body)
                    await message.ack()
                    if written >= size:
                        break
            file.flush()
            os.fsync(file.fileno())
        _say(done=time.time(), rss_growth=memory.stop())


async def raw_publisher(queue: str, path: Path) -> None:
    """Raw aio-pika: publish the file in chunks, persistent, confirmed, ``WINDOW`` in flight."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        slots = asyncio.Semaphore(WINDOW)
        pending: set[asyncio.Task[None]] = set()

        async def publish(body: bytes) -> None:
            try:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    queue,
                    timeout=60,
                )
            finally:
                slots.release()

        _say(began=time.time())
        with path.open("rb") as file:
            while True:
                await slots.acquire()
                body = file.read(CHUNK)
                if not body:
                    slots.release()
                    break
                task = asyncio.create_task(publish(body))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)


# --- the parent ---------------------------------------------------------------------------


def _spawn(role: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE), "--role", role, *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _line(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"a benchmark process ended early (exit {process.wait()})")
    parsed: dict[str, Any] = json.loads(line)
    return parsed


async def run_ours(settings: Settings, path: Path) -> dict[str, Any]:
    """One transfer through our nodes; seconds and both nodes' RSS growth."""
    env = exchange_env(settings, EXCHANGE_LOG_LEVEL="WARNING")
    receiving = _spawn("provider", env=env)
    try:
        await asyncio.to_thread(_line, receiving)  # ready
        sending = _spawn("sender", str(path), env=env)
        sent = await asyncio.to_thread(_line, sending)
        received = await asyncio.to_thread(_line, receiving)
        sending.wait(60)
        receiving.wait(60)
    finally:
        for process in (receiving,):
            if process.poll() is None:
                process.kill()
    return {"sent": sent, "received": received}


async def run_raw(queue: str, path: Path, out: Path) -> dict[str, Any]:
    """One transfer with raw aio-pika; seconds and the consumer's RSS growth."""
    env = dict(os.environ)
    size = path.stat().st_size
    consumer = _spawn("raw-consumer", queue, str(out), str(size), env=env)
    await asyncio.to_thread(_line, consumer)  # ready
    publisher = _spawn("raw-publisher", queue, str(path), env=env)
    began = (await asyncio.to_thread(_line, publisher))["began"]
    done = await asyncio.to_thread(_line, consumer)
    publisher.wait(60)
    consumer.wait(60)
    out.unlink(missing_ok=True)
    return {"seconds": done["done"] - began, "rss_growth": done["rss_growth"]}


def _write_random(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(mib):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


async def main(mib: int, rounds: int) -> None:
    """Raw and ours by turns, ``rounds`` times; print each and the ratios."""
    began = time.perf_counter()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    work = Path(tempfile.mkdtemp(prefix="bench-attach-"))
    queue = f"{prefix}raw.chunks"
    prefixes: list[str] = []
    try:
        pki = ThrowawayPKI.create(work / "pki", PARTIES[:2], SystemClock())
        catalog = work / "catalog.toml"
        catalog.write_text(
            (DATA / "catalog.toml")
            .read_text()
            .replace("max_size = 65536", f"max_size = {2 * mib * 1024 * 1024}")
        )
        source = work / "site-plan.pdf"
        expected = _write_random(source, mib)
        print(
            f"{mib} MiB attachment, chunks of {CHUNK // 1024} KiB, {WINDOW} unconfirmed at most, "
            f"prefetch {PREFETCH}; quorum queues, persistent, confirms; {rounds} round(s)"
        )
        ratios = []
        for number in range(rounds):
            raw = await run_raw(queue, source, work / "raw.out")
            run_prefix = f"{prefix}r{number}."
            prefixes.append(run_prefix)
            settings = Settings(
                certs_dir=pki.path,
                schemas_dir=DATA / "schemas",
                catalog=catalog,
                amqp_url=AMQP_URL,
                bus_prefix=run_prefix,
                store_dir=work / f"stores-{number}",
                store_dsn=None,
            )
            ours = await run_ours(settings, source)
            sent, received = ours["sent"], ours["received"]
            assert sent["kind"] == "response", sent
            assert received["sha256"] == expected, "the provider holds other bytes"
            ratio = raw["seconds"] / sent["seconds"]
            ratios.append(ratio)
            print(
                f"round {number + 1}: raw aio-pika {raw['seconds']:.1f} s "
                f"({mib / raw['seconds']:.0f} MiB/s, "
                f"consumer RSS +{raw['rss_growth'] / 2**20:.1f} MB)"
                f"; ours {sent['seconds']:.1f} s ({mib / sent['seconds']:.0f} MiB/s)"
            )
            print(
                f"  peak RSS growth: sender node {sent['rss_growth'] / 2**20:.1f} MB, "
                f"provider node {received['rss_growth'] / 2**20:.1f} MB (target < 50 MB each)"
            )
            print(f"  rate ratio ours/raw {ratio:.2f} (target >= 0.5)")
            shutil.rmtree(settings.store_dir, ignore_errors=True)
        print(f"ratio over {rounds} round(s): min {min(ratios):.2f}, max {max(ratios):.2f}")
    finally:
        await _clean(queue, prefixes)
        shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.perf_counter() - began:.0f} s")


async def _clean(queue: str, prefixes: list[str]) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        for prefix in prefixes:
            await remove_topology(channel, BusNames(prefix), PARTIES)


def _child(args: argparse.Namespace) -> None:
    extra = args.args
    if args.role == "provider":
        asyncio.run(provider())
    elif args.role == "sender":
        asyncio.run(sender(Path(extra[0])))
    elif args.role == "raw-consumer":
        asyncio.run(raw_consumer(extra[0], Path(extra[1]), int(extra[2])))
    elif args.role == "raw-publisher":
        asyncio.run(raw_publisher(extra[0], Path(extra[1])))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="attachment size in MiB")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.role:
        _child(parsed)
    else:
        asyncio.run(main(parsed.mib, parsed.rounds))
