"""Where a request+receipt pair's CPU goes: one in-process run of ``bench_bus`` under cProfile.

Both nodes run in this process (so one profile sees both sides); each function's own time
(cProfile's tottime) is put in one share by the file it lives in. Prints the shares and
the CPU per pair; cProfile's overhead inflates the absolute numbers, not the shares much.
Run with ``python benchmarks/profile_bus.py [xml|json] [N]``; the summary is in
``benchmarks/README.md``.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from bench_bus import CONFIG, _measure_sizes, bench_settings, ours

from exchange._logging import configure_logging
from exchange.node import build_node
from exchange.signing import WireFormat

# First match wins: (share, substrings of the function's file or name).
SHARES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("crypto (ECDSA, SHA-256, certificates)", ("_rust", "cryptography", "hashlib", "pki/")),
    ("XML build/parse/c14n/profile", ("_hazmat/xml", "lxml", "xmldsig", "codec/xml")),
    ("JWS and JSON codec", ("signing/jws", "codec/json", "codec/b64url", "json/")),
    ("store (SQLite, group commit)", ("node/store", "sqlite3")),
    ("audit chain and shipping", ("ledger/", "audit/", "node/shipper")),
    ("AMQP client (aiormq, pamqp, transport)", ("aiormq", "pamqp", "aio_pika", "transport/")),
    ("asyncio and sockets", ("asyncio", "select.epoll", "_socket", "selectors", "_queue")),
    ("envelope model, catalog, schemas", ("envelope/", "catalog/", "pydantic", "jsonschema")),
)


def shares(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per share (the rest is "node glue and other")."""
    found: dict[str, float] = {}
    for (filename, _, name), row in stats.stats.items():  # type: ignore[attr-defined]
        own = row[2]
        where = f"{filename} {name}"
        share = next(
            (label for label, keys in SHARES if any(k in where for k in keys)),
            "node glue and other",
        )
        found[share] = found.get(share, 0.0) + own
    return found


async def main(wire_format: WireFormat, count: int) -> None:
    """Profile one run of ``count`` requests and print the shares."""
    configure_logging("WARNING")
    work = Path(tempfile.mkdtemp(prefix="profile-bus-"))
    try:
        settings = bench_settings(work, f"prof{uuid.uuid4().hex[:8]}.")
        sizes = _measure_sizes(build_node("single-center", settings, config=CONFIG))
        profile = cProfile.Profile()
        profile.enable()
        rate, _ = await ours(settings, wire_format, count, 64, sizes.reason_chars)
        profile.disable()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = shares(pstats.Stats(profile))
    total = sum(found.values())
    print(
        f"{wire_format.value.upper()}: {count} request+receipt pairs, both nodes in one "
        f"process, under cProfile: {rate:.0f} envelopes/s, {total / count * 1000:.2f} ms "
        "CPU per pair (profiled)"
    )
    for label, seconds in sorted(found.items(), key=lambda item: -item[1]):
        print(f"  {label:<42} {seconds / total:6.1%}")


if __name__ == "__main__":
    chosen = WireFormat(sys.argv[1]) if len(sys.argv) > 1 else WireFormat.XML
    asyncio.run(main(chosen, int(sys.argv[2]) if len(sys.argv) > 2 else 3000))
