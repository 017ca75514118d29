"""The probe server: ``/metrics`` (Prometheus text), ``/health`` (alive), ``/ready`` (503 with
what is not ready), on one aiohttp server per process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from exchange.exceptions import ProbeUnavailable
from exchange.observe.health import Readiness

Refresh = Callable[[], Awaitable[None]]
"""Reads the gauges' sources just before a scrape."""


class ProbeServer:
    """Serves one registry's metrics and one readiness's checks over HTTP."""

    def __init__(
        self,
        registry: CollectorRegistry,
        refresh: Refresh,
        readiness: Readiness,
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """``port`` 0 takes any free port (tests); ``port`` tells which once started."""
        self.registry = registry
        self.refresh = refresh
        self.readiness = readiness
        self.name = name
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen.

        Raises:
            ProbeUnavailable (probe-unavailable): the address is taken or not ours.
        """
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ProbeUnavailable(
                f"cannot serve /metrics on {self.host}:{self.port}: {exc.strerror or exc}; "
                "set EXCHANGE_METRICS_PORT to a free port, or unset it",
                host=self.host,
                port=self.port,
            ) from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        await self.refresh()
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _health(self, _: web.Request) -> web.Response:
        return alive(self.name)

    async def _ready(self, _: web.Request) -> web.Response:
        return await ready(self.readiness, self.name)


def alive(name: str) -> web.Response:
    """``/health``'s answer: the process answers at all."""
    return web.json_response({"status": "alive", "name": name})


async def ready(readiness: Readiness, name: str) -> web.Response:
    """``/ready``'s answer: 200 when every check passes, else 503 naming what is wrong."""
    problems = await readiness.problems()
    checks = {check: problems.get(check, "ok") for check in readiness.checks}
    body = {"status": "not-ready" if problems else "ready", "name": name, "checks": checks}
    return web.json_response(body, status=503 if problems else 200)
