"""Memory over a long run: a node's RSS stays flat (within 10%) after warm-up (issue 17).

The provider (``improvement``) runs as its own ``exchange node run`` process on a SQLite
store, as deployed; the sender node runs in this process. ``--requests`` requests go through
(at most ``--window`` without a receipt); the provider's RSS (and the sender process's) is
sampled every ``SAMPLE_SECONDS``. Start is the RSS once ``--warmup`` requests have their
receipts, peak the largest after it, end the last. Prints start/peak/end and the ratios
(target: peak <= 1.10x start); no assertion (timings and sizes vary here).
Run with ``python benchmarks/bench_rss.py [--requests N] [--warmup N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench_bus import SERVICE, _payload, bench_settings, start_pair
from rich.progress import Progress

from exchange._logging import configure_logging
from exchange.node import Notice
from exchange.signing import WireFormat

SAMPLE_SECONDS = 0.5
TARGET = 1.10  # peak RSS after warm-up at most this times the start


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Samples:
    """RSS samples of one process after warm-up."""

    name: str
    values: list[int] = field(default_factory=list)

    def line(self) -> str:
        """start/peak/end in MB, and peak and end as ratios to start."""
        start, peak, end = self.values[0], max(self.values), self.values[-1]
        verdict = "met" if peak <= TARGET * start else "NOT met"
        mb = 1024 * 1024
        return (
            f"{self.name:<28} RSS start {start / mb:6.1f} MB  peak {peak / mb:6.1f} MB  "
            f"end {end / mb:6.1f} MB  peak/start {peak / start:.3f} end/start "
            f"{end / start:.3f}  (target peak <= {TARGET:.2f}x start: {verdict})"
        )


async def main(count: int, warmup: int, window: int) -> None:
    """Send ``warmup`` then ``count`` requests, sampling both processes' RSS."""
    configure_logging("WARNING")
    prefix = f"rss{uuid.uuid4().hex[:8]}."
    work = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    settings = bench_settings(work, prefix)
    pair = await start_pair(settings, "rss", split=True)
    assert pair.process is not None
    provider, sender = Samples("provider (its own process)"), Samples("sender (this process)")
    slots = asyncio.Semaphore(window)
    receipts = 0

    def on_notice(notice: Notice) -> None:
        nonlocal receipts
        if notice.kind == "receipt":
            receipts += 1
            slots.release()

    pair.sender.on_notice(on_notice)
    payload = _payload(200, WireFormat.JSON)
    total = warmup + count
    began = time.perf_counter()
    try:
        with Progress() as progress:
            task = progress.add_task("requests with a receipt", total=total)

            async def sample() -> None:
                while True:
                    progress.update(task, completed=receipts)
                    if receipts >= warmup:
                        provider.values.append(rss_bytes(pair.process.pid))  # type: ignore[union-attr]
                        sender.values.append(rss_bytes())
                    await asyncio.sleep(SAMPLE_SECONDS)

            sampler = asyncio.create_task(sample())
            for _ in range(total):
                await slots.acquire()
                await pair.sender.request(SERVICE, payload, wire_format=WireFormat.JSON)
            while receipts < total:
                await asyncio.sleep(0.1)
            await asyncio.sleep(2 * SAMPLE_SECONDS)
            sampler.cancel()
        elapsed = time.perf_counter() - began
        print(
            f"{warmup} warm-up + {count} requests (JSON, W={window}, SQLite stores) in "
            f"{elapsed:.0f} s, "
            f"{len(provider.values)} samples after warm-up"
        )
        print(provider.line())
        print(sender.line())
    finally:
        await pair.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.warmup, args.window))
