"""``exchange status ID --party P`` and ``exchange trace`` of an id nobody knows."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from exchange.cli import app
from exchange.node import IncomingRequest, Waiting
from tests.bus import conftest as bus_fixtures
from tests.bus.conftest import MakeNode
from tests.cli import test_bus_cli as bus_cli
from tests.cli.test_bus_cli import GRANTED, TREES, invoke, invoke_async, json_output

pytestmark = pytest.mark.rabbit

live_pki = bus_fixtures.live_pki
bus_prefix = bus_fixtures.bus_prefix
settings = bus_fixtures.settings
make_node = bus_fixtures.make_node
env = bus_cli.env
keep_logging = bus_cli.keep_logging


async def test_status_of_an_answered_request_shows_state_and_answers(
    make_node: MakeNode, env: dict[str, str | None]
) -> None:
    """The sender's view: answered, the receipt and the response with its payload."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        return GRANTED

    request_id = await sender.request("tree-felling-permit", TREES, case_id="KZN-ST-1")
    await sender.wait_answer(request_id, timeout=20)

    result = await invoke_async(env, "status", request_id, "--party", "single-center", "--json")

    assert result.exit_code == 0, result.output
    doc = json_output(result)
    assert doc["state"] == "answered"
    assert doc["direction"] == "sent"
    assert doc["party"] == "improvement"
    assert [answer["kind"] for answer in doc["answers"]] == ["receipt", "response"]
    assert doc["answers"][-1]["payload"] == GRANTED
    text = await invoke_async(env, "status", request_id, "--party", "single-center")
    assert "state       answered" in text.stdout
    assert "provider    improvement" in text.stdout


async def test_status_of_a_parked_request_says_what_it_waits_on(
    make_node: MakeNode, env: dict[str, str | None]
) -> None:
    """The provider's view of a request whose handler waits on a question to another party."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    questions: list[str] = []

    @provider.handler("tree-felling-permit")
    async def ask_first(request: IncomingRequest) -> Waiting:
        if not questions:  # nobody runs land-property here: the question stays open
            questions.append(
                await provider.request("land-plot-info", {"cadastral_number": "16:50:011302:45"})
            )
        return Waiting(on=questions[0])

    request_id = await sender.request("tree-felling-permit", TREES)
    for _ in range(200):  # a readiness signal: the provider's store says it is parked
        if await provider.waiting_on(request_id) is not None:
            break
        await asyncio.sleep(0.05)

    result = await invoke_async(env, "status", request_id, "--party", "improvement")

    assert result.exit_code == 0, result.output
    assert "direction   received" in result.stdout
    assert "state       received" in result.stdout
    assert f"waiting on  {questions[0]}" in result.stdout
    assert "sender      single-center" in result.stdout


def test_status_of_an_unknown_id_exits_1_saying_not_found(env: Mapping[str, str | None]) -> None:
    """No such request in the party's store: exit 1, `not found`, and where else to look."""
    result = invoke(env, "status", "no-such-id", "--party", "single-center")
    assert result.exit_code == 1
    assert "error unknown-message: request no-such-id not found in single-center's store" in (
        result.stderr
    )
    assert "exchange trace" in result.stderr


def test_status_of_an_unknown_party_is_refused(env: Mapping[str, str | None]) -> None:
    """A typo in --party is named, not answered with an empty store."""
    result = invoke(env, "status", "x", "--party", "single-centre")
    assert result.exit_code == 1
    assert "error unknown-party" in result.stderr


def test_trace_of_an_unknown_id_exits_1_saying_not_found(tmp_path: Path) -> None:
    """An empty timeline is not an answer: exit 1 with `not found` and a hint."""
    result: Result = CliRunner().invoke(
        app, ["trace", "KZN-0000-NOPE"], env={"EXCHANGE_AUDIT_PATH": str(tmp_path / "c.db")}
    )
    assert result.exit_code == 1
    assert "error unknown-message: KZN-0000-NOPE not found in the central audit log" in (
        result.stderr
    )
    assert "exchange audit collect" in result.stderr
