"""The folder bridge with attachments: files beside the request go, an answer's come back."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from exchange.attachments import Outgoing
from exchange.connectors import FolderBridge
from exchange.node import IncomingRequest, Reply
from tests.bus.conftest import MakeNode
from tests.bus.helpers import eventually
from tests.connectors.conftest import TREES, drop, json_request

pytestmark = pytest.mark.rabbit


@pytest.fixture
async def bridge(make_node: MakeNode, tmp_path: Path) -> AsyncIterator[FolderBridge]:
    """single-center's node with a folder bridge under tmp_path/folders, running."""
    bridge = FolderBridge(
        await make_node("single-center"), tmp_path / "folders", poll_interval=0.05
    )
    running = asyncio.create_task(bridge.run())
    yield bridge
    bridge.stop()
    await running


async def _one(stream_of: bytes) -> AsyncIterator[bytes]:
    yield stream_of


async def test_attachments_named_in_a_request_file_travel_and_answers_bring_theirs(
    make_node: MakeNode, bridge: FolderBridge
) -> None:
    """plan.pdf beside the request reaches the handler; the permit PDF lands beside the answer."""
    provider = await make_node("improvement")
    plan = b"%PDF-1.4 plan " + os.urandom(5000)
    permit = b"%PDF-1.7 permit " + os.urandom(3000)
    seen: list[bytes] = []

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> Reply:
        with request.attachments[0].open() as handle:
            seen.append(handle.read())
        return Reply({"decision": "granted"}, [Outgoing(_one(permit), name="permit.pdf")])

    drop(bridge.outbox, "plan.pdf", plan)
    drop(bridge.outbox, "first.json", json_request(TREES, attachments=["plan.pdf"]))

    async def answered() -> Path | None:
        found = list(bridge.inbox.glob("*.response.json"))
        return found[0] if found else None

    answer = await eventually(answered, timeout=20, what="the response file")
    request_id = json.loads(answer.read_bytes())["request_id"]
    assert seen == [plan]
    assert (bridge.inbox / f"{request_id}.permit.pdf").read_bytes() == permit
    assert (bridge.sent / f"{request_id}__plan.pdf").read_bytes() == plan
    assert not (bridge.outbox / "plan.pdf").exists()


async def test_a_request_naming_an_absent_file_is_rejected(bridge: FolderBridge) -> None:
    """A named attachment not in outbox/ rejects the request file with attachment-missing."""
    drop(bridge.outbox, "lonely.json", json_request(TREES, attachments=["nowhere.pdf"]))
    reason = bridge.rejected / "lonely.json.reason.txt"

    async def rejected() -> bool:
        return reason.exists()

    await eventually(rejected, what="the rejection")
    assert reason.read_text().startswith("attachment-missing: nowhere.pdf")
