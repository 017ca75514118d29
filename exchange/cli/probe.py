"""``exchange probe``: ask this machine's node or collector whether it is ready (healthchecks)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Annotated

import typer

from exchange.cli._output import fail, load_settings


def probe(
    path: Annotated[
        str, typer.Option(help="/ready (broker, store, trust), /health (alive) or /metrics.")
    ] = "/ready",
    port: Annotated[
        int | None,
        typer.Option(help="The probe server's port.", show_default="EXCHANGE_METRICS_PORT"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 5.0,
) -> None:
    """GET PATH of the probe server on this machine; print the answer; exit 1 unless 200.

    What docker-compose.yml and the Dockerfile run as the healthcheck of every node and the
    collector (they serve it when EXCHANGE_METRICS_PORT is set).
    """
    if path not in ("/ready", "/health", "/metrics"):
        raise fail("config-error", f"--path {path!r}: give /ready, /health or /metrics")
    settings = load_settings()
    port = port or settings.metrics_port
    if port is None:
        raise fail(
            "config-error",
            "no probe server to ask: set EXCHANGE_METRICS_PORT (as the node's) or give --port",
        )
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            typer.echo(answer.read().decode("utf-8", "replace").rstrip())
    except urllib.error.HTTPError as exc:  # 503: not ready, with what is not
        typer.echo(exc.read().decode("utf-8", "replace").rstrip())
        raise typer.Exit(code=1) from None
    except (urllib.error.URLError, OSError) as exc:
        raise fail("not-ready", f"nothing answers at {url}: {exc}") from None
