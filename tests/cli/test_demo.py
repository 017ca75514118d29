"""``exchange demo``: the city answers a stream of applications, twice in a row, on its own PKI."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import aio_pika
import pytest
from aiormq.exceptions import ChannelNotFoundEntity
from typer.testing import CliRunner

from exchange.cli import app
from exchange.transport.names import BusNames
from tests.bus.conftest import AMQP_URL


@pytest.fixture(autouse=True)
def keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the demo from pointing structlog at the runner's stream, closed after each call."""
    monkeypatch.setattr("exchange.cli.demo.configure_logging", lambda *_, **__: None)


def demo_env(tmp_path: Path) -> dict[str, str | None]:
    """EXCHANGE_* variables pointing at scratch directories and a prefix of this test's own."""
    return {
        "EXCHANGE_CERTS_DIR": str(tmp_path / "certs"),
        "EXCHANGE_STORE_DIR": str(tmp_path / "var"),
        "EXCHANGE_BUS_PREFIX": f"td{uuid.uuid4().hex[:8]}.",
        "EXCHANGE_AMQP_URL": AMQP_URL,
        "EXCHANGE_STORE_DSN": None,
        "COLUMNS": "200",
    }


async def queue_exists(name: str) -> bool:
    """Whether the broker has a queue of that name."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except ChannelNotFoundEntity:
            return False
        return True


@pytest.mark.rabbit
def test_demo_runs_twice_and_traces_a_case_across_three_departments(tmp_path: Path) -> None:
    """Both runs answer every application, trace a three-department case, report deadlines."""
    runner = CliRunner()
    env = demo_env(tmp_path)
    first = runner.invoke(app, ["demo"], env=env)
    second = runner.invoke(app, ["demo"], env=env)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "created the root CA" in first.output
    assert "created the root CA" not in second.output
    prefixes = []
    for run in (first.output, second.output):
        assert "40/40" in run
        assert "Applications by service" in run
        assert re.search(r"Case KZN-\d{4}-\d{6} crossed 3 departments: single-center -> ", run)
        assert "Trace of KZN-" in run
        assert "land-plot-info" in run or "urban-plan-extract" in run
        assert "response-received" in run
        assert "Deadline report" in run
        assert "14 calendar days" in run
        found = re.search(r"bus prefix (\S+) removed", run)
        assert found is not None
        prefixes.append(found.group(1))
    assert prefixes[0] != prefixes[1]
    assert prefixes[0].startswith(str(env["EXCHANGE_BUS_PREFIX"]))
    for prefix in prefixes:
        assert not asyncio.run(queue_exists(BusNames(prefix).inbox("improvement")))
    runs = list((tmp_path / "var" / "demo").glob("run-*"))
    assert len(runs) == 2
    assert all((run / "audit-central.db").is_file() for run in runs)


def test_demo_without_a_broker_says_how_to_start_one(tmp_path: Path) -> None:
    """No RabbitMQ: exit 1 with the fix, and no password in the message."""
    env = demo_env(tmp_path) | {"EXCHANGE_AMQP_URL": "amqp://guest:guest@127.0.0.1:5999/"}
    result = CliRunner().invoke(app, ["demo"], env=env)
    assert result.exit_code == 1
    assert "error broker-unavailable" in result.stderr
    assert "rabbitmq-server -detached" in result.stderr
    assert "EXCHANGE_AMQP_URL" in result.stderr
    assert "guest:***@127.0.0.1:5999" in result.stderr
    assert "guest:guest@" not in result.output
    assert not (tmp_path / "certs").exists()
