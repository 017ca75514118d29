"""``exchange bridge``: run a party's node together with a connector for its departmental system."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from exchange._logging import configure_logging
from exchange.cli import bridge_http
from exchange.cli._output import fail, load_settings, user_errors
from exchange.cli._serving import announce_ready, stop_on_signal
from exchange.connectors import FolderBridge
from exchange.node import build_node
from exchange.observe import node_companions

app = typer.Typer(help="Connectors for departmental systems.", no_args_is_help=True)

# Test hook: seconds the folder bridge pauses after claiming a file and after sending it.
SLOW_VARIABLE = "EXCHANGE_FOLDER_SLOW"


@app.command("folder")
def folder(
    party: Annotated[str, typer.Argument(help="Party id, e.g. single-center.")],
    root: Annotated[
        Path,
        typer.Option(file_okay=False, help="Root of outbox/, inbox/, rejected/ and sent/."),
    ],
    poll: Annotated[float, typer.Option(help="Seconds between looks at outbox/.")] = 0.5,
) -> None:
    """Run PARTY's node and a folder bridge under ROOT until SIGTERM; prints `ready PARTY`."""
    configure_logging(load_settings().log_level)
    with user_errors():
        settings = load_settings()
        node = build_node(party, settings, companions=node_companions(settings))
        bridge = FolderBridge(node, root, poll_interval=poll, pause=_slow())
        bridge.prepare()
        asyncio.run(_serve(bridge))


def _slow() -> float:
    value = os.environ.get(SLOW_VARIABLE, "0") or "0"
    try:
        return max(float(value), 0.0)
    except ValueError:
        raise fail("config-error", f"{SLOW_VARIABLE} must be seconds, not {value!r}") from None


async def _serve(bridge: FolderBridge) -> None:
    stop = stop_on_signal()
    node = bridge.node
    await node.start()
    try:
        running = asyncio.create_task(bridge.run(), name=f"{node.party}-folder-bridge")
        announce_ready(node.party)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        bridge.stop()
        stopping.cancel()
        await running  # re-raises if the bridge failed
    finally:
        await node.stop()


app.command("http")(bridge_http.http)
