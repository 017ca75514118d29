"""The adapters wait for other departments instead of failing: the casebook parks the request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

import adapters.improvement.config as improvement_config
import adapters.improvement.system as improvement_system
from exchange.catalog import Catalog
from exchange.config import Settings
from exchange.node import Node, build_node
from exchange.node.adapters import load_adapter
from exchange.signing import WireFormat
from tests.adapters.conftest import FAST
from tests.adapters.test_city_flow import application
from tests.bus.helpers import audit_events, wait_event

pytestmark = pytest.mark.rabbit

DELAYS = (0.1, 0.1)
BUDGET = {**FAST, "handler_retry_delays": DELAYS, "wait_recheck": 0.2}


@pytest.fixture
async def started(city_settings: Settings, city_catalog: Catalog) -> AsyncIterator[list[Node]]:
    """Nodes started by the test, stopped after it (before its bus prefix is removed)."""
    nodes: list[Node] = []
    yield nodes
    for node in reversed(nodes):
        await node.stop()


async def department(
    party: str, settings: Settings, catalog: Catalog, nodes: list[Node], **overrides: Any
) -> Node:
    """Start ``party``'s node with its adapter's handlers."""
    adapter = load_adapter(catalog, party)
    node = build_node(
        party, settings, config=adapter.config.node_config(**overrides), catalog=catalog
    )
    adapter.register(node)
    await node.start()
    nodes.append(node)
    return node


async def test_tree_felling_waits_for_land_property_without_using_its_budget(
    city_settings: Settings,
    city_catalog: Catalog,
    started: list[Node],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Land and Property is down longer than the retry budget; the citizen still gets a permit."""
    quick = replace(improvement_config.CONFIG, query_timeout=0.1)
    monkeypatch.setattr(improvement_system, "CONFIG", quick)
    front = await department("single-center", city_settings, city_catalog, started, **FAST)
    provider = await department("improvement", city_settings, city_catalog, started, **BUDGET)
    request_id = await front.request(
        "tree-felling-permit",
        application("tree-felling-permit"),
        case_id="KZN-T-W",
        wire_format=WireFormat.JSON,
    )
    waiting = await wait_event(provider, "waiting", request_id)
    # Land and Property stays away for ten times the whole retry budget.
    await asyncio.sleep(10 * sum(DELAYS))
    assert [e for e in await audit_events(provider, "retried") if e.message_id == request_id] == []
    assert await front.final_notice(request_id) is None

    await department("land-property", city_settings, city_catalog, started, **FAST)
    answer = await front.wait_answer(request_id, timeout=30)

    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload is not None
    assert answer.envelope.payload["decision"] == "granted"
    asked = [e for e in await audit_events(provider, "created") if e.case_id == "KZN-T-W"]
    assert [e.message_id for e in asked] == [waiting.detail["on"]]  # asked once, waited on it
    assert [e for e in await audit_events(provider, "retried") if e.message_id == request_id] == []
    record = await provider.ctx.store.get_inbox(request_id)
    assert record is not None
    assert record.attempts == 0
