"""Per-case order on a live node: a later request of a case waits until the earlier is done.

The store's claim contract shows the query; this shows the worker honours it with a handler
that is still running (claimed, open) while the next request of its case is due.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from exchange.config import Settings
from exchange.ledger.event import EventName
from exchange.node import IncomingRequest
from tests.bus.conftest import DATA, MakeNode
from tests.bus.helpers import eventually, wait_event
from tests.bus.test_bad_traffic import TREES

SERVICE_LINE = 'schemas = "services/tree-felling-permit/1"\n'


@pytest.fixture(params=[True, False], ids=["ordered", "unordered"])
def ordered(request: pytest.FixtureRequest) -> bool:
    """Whether the catalog flags the tree-felling service ``ordered``."""
    return bool(request.param)


@pytest.fixture
def settings(settings: Settings, ordered: bool, tmp_path: Path) -> Settings:
    """The bus tests' settings with the catalog's tree-felling service ordered or not."""
    text = (DATA / "catalog.toml").read_text()
    assert SERVICE_LINE in text
    if ordered:
        text = text.replace(SERVICE_LINE, SERVICE_LINE + "ordered = true\n")
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return settings.model_copy(update={"catalog": path})


async def _holds(items: list[str], item: str) -> bool:
    return item in items


@pytest.mark.rabbit
async def test_a_later_request_of_a_case_waits_for_the_earlier(
    make_node: MakeNode, ordered: bool
) -> None:
    """Ordered: the second request of a case starts only after the first has finished, while
    another case's request runs beside it. Unordered (the control): it runs at once."""
    provider = await make_node("improvement")
    sender = await make_node("single-center")
    release = asyncio.Event()
    started: list[str] = []
    finished: list[str] = []

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        started.append(request.message_id)
        if request.message_id == first:
            await release.wait()
        finished.append(request.message_id)
        return {"decision": "granted", "permit_number": "TF-1"}

    first = await sender.request("tree-felling-permit", TREES, case_id="KZN-A")
    await eventually(lambda: _holds(started, first), what="the first run")
    second = await sender.request("tree-felling-permit", TREES, case_id="KZN-A")
    other = await sender.request("tree-felling-permit", TREES, case_id="KZN-B")
    # The other case is not held back; by the time it has run, the provider has looked at
    # the second request of case A too (both were due in the same claims).
    await wait_event(provider, EventName.RECEIVED, second)
    await eventually(lambda: _holds(finished, other), what="the other case's run")
    if ordered:
        for _ in range(5):  # several more looks at the store: it stays held
            await asyncio.sleep(provider.ctx.config.poll_interval)
        assert second not in started
    else:  # it runs while the first is still held
        await eventually(lambda: _holds(started, second), what="the second run")
    release.set()
    await eventually(lambda: _holds(finished, second), what="the second run")
    await eventually(lambda: _holds(finished, first), what="the first run")
    if ordered:
        assert finished.index(first) < started.index(second)
