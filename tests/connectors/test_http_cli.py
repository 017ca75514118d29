"""``exchange bridge http PARTY``: the command serves the bridge until SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from exchange.config import Settings

pytestmark = pytest.mark.rabbit

# The command function, run as its own typer app (the ``bridge`` group registers it).
RUN = "import typer; from exchange.cli.bridge_http import http; typer.run(http)"


async def test_command_serves_until_sigterm(settings: Settings) -> None:
    """The command prints `ready PARTY URL`, answers /health, and exits 0 on SIGTERM."""
    env = {
        **os.environ,
        "EXCHANGE_CERTS_DIR": str(settings.certs_dir),
        "EXCHANGE_SCHEMAS_DIR": str(settings.schemas_dir),
        "EXCHANGE_CATALOG": str(settings.catalog),
        "EXCHANGE_AMQP_URL": settings.amqp_url,
        "EXCHANGE_BUS_PREFIX": settings.bus_prefix,
        "EXCHANGE_STORE_DIR": str(settings.store_dir),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN,
        "single-center",
        "--port",
        "0",
        "--callback-url",
        "http://127.0.0.1:9/callbacks",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().split()
        assert line[:2] == ["ready", "single-center"], line
        async with aiohttp.ClientSession() as http, http.get(f"{line[2]}/health") as response:
            assert response.status == 200
            assert (await response.json())["party"] == "single-center"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
