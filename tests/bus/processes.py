"""An ``exchange`` command run as a separate process, as the chaos tests need it.

Started in its own session, ready when it prints its readiness line, killed by its own pid.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from exchange.testing import exchange_env

__all__ = ["ExchangeProcess", "exchange_env"]

REPO = Path(__file__).resolve().parents[2]


class ExchangeProcess:
    """``python -m exchange.cli ARGS`` in its own session."""

    def __init__(self, args: list[str], ready: bytes, log: Path | None = None) -> None:
        self.args = args
        self.ready = ready
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, env: dict[str, str]) -> None:
        """Start the process and wait for its readiness line (not a sleep)."""
        log = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exchange.cli", *self.args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            cwd=REPO,
        )
        if not isinstance(log, int):
            log.close()
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        assert line.strip() == self.ready, line

    def kill(self) -> None:
        """SIGKILL: no chance to flush, ack or finish anything."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self) -> None:
        """SIGTERM and wait: a clean stop (SIGKILL if it hangs)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(30)
