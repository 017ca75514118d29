"""The probe server and `exchange probe`, without a broker: what /ready, /health and /metrics
answer, and what a healthcheck makes of it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from typer.testing import CliRunner

from exchange.cli import app
from exchange.exceptions import NotReady, ProbeUnavailable
from exchange.observe import ProbeServer, Readiness
from tests.observe._scrape import get, scrape, total


class Switch:
    """A readiness check that fails while ``problem`` is set."""

    def __init__(self) -> None:
        self.problem: str | None = None

    async def __call__(self) -> None:
        if self.problem is not None:
            raise NotReady(self.problem, check="switch")


@pytest.fixture
async def served() -> AsyncIterator[tuple[ProbeServer, Switch, Counter]]:
    """A probe server on a free port with one switchable check and one counter."""
    registry = CollectorRegistry()
    refreshes = Counter("test_refreshes", "Times a scrape refreshed.", registry=registry)

    async def refresh() -> None:
        refreshes.inc()

    switch = Switch()
    server = ProbeServer(registry, refresh, Readiness({"switch": switch}), name="test")
    await server.start()
    try:
        yield server, switch, refreshes
    finally:
        await server.stop()


async def test_ready_is_200_then_503_naming_the_check(
    served: tuple[ProbeServer, Switch, Counter],
) -> None:
    """/ready is 200 while every check passes, 503 with the failing check's problem after."""
    server, switch, _ = served
    status, body = await get(server.port, "/ready")
    assert (status, body) == (200, {"status": "ready", "name": "test", "checks": {"switch": "ok"}})
    switch.problem = "the switch is off"
    status, body = await get(server.port, "/ready")
    assert status == 503
    assert body == {
        "status": "not-ready",
        "name": "test",
        "checks": {"switch": "the switch is off"},
    }


async def test_health_answers_while_not_ready(served: tuple[ProbeServer, Switch, Counter]) -> None:
    """/health says only that the process answers: 200 whatever /ready says."""
    server, switch, _ = served
    switch.problem = "down"
    assert await get(server.port, "/health") == (200, {"status": "alive", "name": "test"})


async def test_metrics_refresh_before_each_scrape(
    served: tuple[ProbeServer, Switch, Counter],
) -> None:
    """Each scrape runs the refresh first, and returns the registry in Prometheus' text format."""
    server, _, _ = served
    first = await scrape(server.port)
    second = await scrape(server.port)
    assert total(first, "test_refreshes_total") == 1
    assert total(second, "test_refreshes_total") == 2


async def test_a_hanging_check_fails_after_its_time_out() -> None:
    """A check that never returns is reported as not answering, not waited on forever."""

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise RuntimeError("boom")

    problems = await Readiness({"hangs": hangs, "fails": fails}, timeout=0.1).problems()
    assert problems == {"hangs": "no answer within 0.1 s", "fails": "RuntimeError('boom')"}


async def test_a_taken_port_is_probe_unavailable() -> None:
    """Listening where another socket listens fails with probe-unavailable naming the port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ProbeServer(CollectorRegistry(), _nothing, Readiness({}), name="test", port=port)
        with pytest.raises(ProbeUnavailable) as info:
            await server.start()
    assert str(port) in info.value.message
    assert "EXCHANGE_METRICS_PORT" in info.value.message


async def _nothing() -> None:
    return None


class TestProbeCommand:
    """`exchange probe`: the healthcheck of the image and docker-compose.yml."""

    async def test_exit_code_follows_ready(
        self, served: tuple[ProbeServer, Switch, Counter]
    ) -> None:
        """0 and the JSON while ready; 1 and the JSON naming the problem while not."""
        server, switch, _ = served
        runner = CliRunner()
        ready = await asyncio.to_thread(runner.invoke, app, ["probe", "--port", str(server.port)])
        assert ready.exit_code == 0, ready.output
        assert '"ready"' in ready.stdout
        switch.problem = "store is read-only"
        down = await asyncio.to_thread(runner.invoke, app, ["probe", "--port", str(server.port)])
        assert down.exit_code == 1
        assert "store is read-only" in down.stdout

    async def test_reads_the_port_from_the_environment(
        self, served: tuple[ProbeServer, Switch, Counter], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --port it asks EXCHANGE_METRICS_PORT, as in a container."""
        server, _, _ = served
        monkeypatch.setenv("EXCHANGE_METRICS_PORT", str(server.port))
        done = await asyncio.to_thread(CliRunner().invoke, app, ["probe", "--path", "/health"])
        assert done.exit_code == 0, done.output
        assert '"alive"' in done.stdout

    def test_no_port_is_a_config_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With no port set anywhere it says what to set."""
        monkeypatch.delenv("EXCHANGE_METRICS_PORT", raising=False)
        done = CliRunner().invoke(app, ["probe"])
        assert done.exit_code == 1
        assert "config-error" in done.stderr
        assert "EXCHANGE_METRICS_PORT" in done.stderr

    def test_nothing_listening_is_not_ready(self) -> None:
        """A port nobody serves is not-ready, exit 1."""
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        done = CliRunner().invoke(app, ["probe", "--port", str(port), "--timeout", "2"])
        assert done.exit_code == 1
        assert "not-ready" in done.stderr

    def test_only_the_probe_paths(self) -> None:
        """Any other path is refused before asking."""
        done = CliRunner().invoke(app, ["probe", "--port", "9", "--path", "/admin"])
        assert done.exit_code == 1
        assert "config-error" in done.stderr
