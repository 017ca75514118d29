"""``exchange bridge http PARTY``: run a party's node behind the HTTP bridge."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from exchange._logging import configure_logging
from exchange.cli._output import load_settings, user_errors
from exchange.cli._serving import announce_ready, stop_on_signal
from exchange.connectors import CallbackConfig, HttpBridge
from exchange.node import Node, build_node
from exchange.observe import node_companions


def http(
    party: Annotated[str, typer.Argument(help="Party id, e.g. single-center.")],
    port: Annotated[int, typer.Option(help="TCP port to listen on (0: any free port).")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    callback_url: Annotated[
        str | None,
        typer.Option(help="Default target of receipts, statuses, responses, faults, undelivered."),
    ] = None,
    requests_url: Annotated[
        str | None,
        typer.Option(
            help="Hand the requests this party provides to this URL; "
            "the system answers via POST /requests/{id}/respond."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="EXCHANGE_BRIDGE_TOKEN", help="Bearer token callers must send."),
    ] = None,
) -> None:
    """Serve PARTY's node over HTTP until SIGTERM or Ctrl-C; prints `ready PARTY URL`."""
    configure_logging(load_settings().log_level)
    with user_errors():
        settings = load_settings()
        node = build_node(party, settings, companions=node_companions(settings))
        bridge = HttpBridge(
            node, CallbackConfig(default_url=callback_url, requests_url=requests_url), token=token
        )
        asyncio.run(_serve(node, bridge, host, port))


async def _serve(node: Node, bridge: HttpBridge, host: str, port: int) -> None:
    stop = stop_on_signal()
    await node.start()
    try:
        bound = await bridge.start(host, port)
        announce_ready(f"{node.party} http://{host}:{bound}")
        await stop.wait()
    finally:
        await bridge.stop()
        await node.stop()
