"""The HTTP bridge with attachments: multipart uploads in, streamed downloads out."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from exchange.attachments import Outgoing
from exchange.connectors import HttpBridge
from exchange.connectors._callbacks import CallbackConfig
from exchange.node import IncomingRequest, Node, Reply
from tests.bus.conftest import MakeNode
from tests.connectors.http_helpers import TREES, call, conforms

pytestmark = pytest.mark.rabbit


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client, as the departmental system's."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


@pytest.fixture
async def bridges() -> AsyncIterator[list[HttpBridge]]:
    """Bridges started by the test; stopped after it."""
    started: list[HttpBridge] = []
    yield started
    for bridge in reversed(started):
        await bridge.stop()


async def _bridge(node: Node, started: list[HttpBridge]) -> str:
    bridge = HttpBridge(node, CallbackConfig(delays=(0.05,), poll_interval=0.05))
    port = await bridge.start()
    started.append(bridge)
    return f"http://127.0.0.1:{port}"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _form(body: dict[str, Any], files: list[tuple[str, bytes, str]]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("request", json.dumps(body), content_type="application/json")
    for name, data, media_type in files:
        form.add_field("attachment", data, filename=name, content_type=media_type)
    return form


async def test_multipart_upload_and_streamed_downloads(
    make_node: MakeNode, http: aiohttp.ClientSession, bridges: list[HttpBridge]
) -> None:
    """A multipart request reaches the handler; both sides download attachments by URL."""
    plan = b"%PDF-1.4 plan " + os.urandom(20_000)
    photo = os.urandom(7000)
    permit = b"%PDF-1.7 permit " + os.urandom(4000)
    provider = await make_node("improvement")
    read: list[bytes] = []

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> Reply:
        for file in request.attachments:
            with file.open() as handle:
                read.append(handle.read())
        return Reply({"decision": "granted"}, [Outgoing(_one(permit), name="permit.pdf")])

    sender = await make_node("single-center")
    sender_base = await _bridge(sender, bridges)
    provider_base = await _bridge(provider, bridges)
    body = {"service": "tree-felling-permit", "payload": TREES}
    files = [("plan.pdf", plan, "application/pdf"), ("tree.jpg", photo, "image/jpeg")]

    async with http.post(f"{sender_base}/requests", data=_form(body, files)) as response:
        assert response.status == 202, await response.text()
        request_id = (await response.json())["message_id"]
    await sender.wait_answer(request_id, timeout=20)
    assert read == [plan, photo]

    status, state = await call(http, "GET", f"{sender_base}/requests/{request_id}")
    assert status == 200
    conforms("RequestState", state)
    assert [a["name"] for a in state["attachments"]] == ["plan.pdf", "tree.jpg"]
    [response_entry] = [a for a in state["answers"] if a["kind"] == "response"]
    [permit_entry] = response_entry["attachments"]
    async with http.get(f"{sender_base}{permit_entry['url']}") as download:
        assert download.status == 200
        assert download.content_type == "application/pdf"
        assert await download.read() == permit
    plan_url = f"/requests/{request_id}/attachments/{hashlib.sha256(plan).hexdigest()}"
    async with http.get(f"{provider_base}{plan_url}") as download:
        assert download.status == 200
        assert await download.read() == plan
    status, missing = await call(
        http, "GET", f"{provider_base}/requests/{request_id}/attachments/{'0' * 64}"
    )
    assert (status, missing["code"]) == (404, "unknown-message")


async def test_an_over_size_upload_is_refused(
    make_node: MakeNode, http: aiohttp.ClientSession, bridges: list[HttpBridge]
) -> None:
    """A file part past the catalog's max size is 400 attachment-refused; nothing is sent."""
    sender = await make_node("single-center")
    base = await _bridge(sender, bridges)
    body = {"service": "tree-felling-permit", "payload": TREES}
    form = _form(body, [("huge.pdf", b"x" * 70_000, "application/pdf")])

    async with http.post(f"{base}/requests", data=form) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "attachment-refused"
    assert sender.attachments.objects() == []
    assert list((sender.attachments.root / "tmp").iterdir()) == []
