"""What every long-running command shares: stopping on a signal, and saying it is ready."""

from __future__ import annotations

import asyncio
import signal


def stop_on_signal() -> asyncio.Event:
    """An event that SIGTERM or Ctrl-C sets (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def announce_ready(what: str) -> None:
    """Print ``ready WHAT``: the line that scripts, tests and supervisors wait for."""
    print(f"ready {what}", flush=True)
