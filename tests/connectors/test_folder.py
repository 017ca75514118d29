"""The folder bridge on the real broker: files in, answers out, exactly once through a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange._hazmat.xml import parse
from exchange.attachments import Outgoing
from exchange.codec.xml import payload_from_element
from exchange.config import Settings
from exchange.connectors import FolderBridge
from exchange.connectors._files import request_id_for
from exchange.envelope.model import Kind
from exchange.node import IncomingRequest, Node, Reply
from exchange.node.store.sqlite import SQLiteStore
from tests.bus.conftest import MakeNode
from tests.bus.helpers import eventually
from tests.bus.processes import ExchangeProcess, exchange_env
from tests.connectors.conftest import TREES, drop, json_request, xml_request

pytestmark = pytest.mark.rabbit

FILES = 50


def _grant(provider: Node, seen: list[str]) -> None:
    """Register a handler that grants every permit, numbered after the request's case."""

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        seen.append(request.message_id)
        return {"decision": "granted", "permit_number": f"TF-{request.envelope.case_id}"}


def _sent_ids(root: Path) -> dict[str, str]:
    """Request id -> original file name, from the names in sent/."""
    pairs = (path.name.split("__", 1) for path in (root / "sent").iterdir())
    return {request_id: name for request_id, name in pairs}


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


async def test_json_and_xml_files_are_answered(make_node: MakeNode, bridge: FolderBridge) -> None:
    """A JSON and an XML file reach the provider; their responses land in inbox/, same format."""
    seen: list[str] = []
    _grant(await make_node("improvement"), seen)
    drop(bridge.outbox, "first.json", json_request(TREES, case_id="KZN-1"))
    drop(bridge.outbox, "KZN-2__second.xml", xml_request())
    drop(bridge.outbox, "later.json.tmp", b"{")  # still being written: not touched

    async def both_sent() -> dict[str, str] | None:
        sent = _sent_ids(bridge.root)
        return sent if len(sent) == 2 else None

    sent = await eventually(both_sent, what="two files in sent/")
    by_name = {name: request_id for request_id, name in sent.items()}
    json_id, xml_id = by_name["first.json"], by_name["KZN-2__second.xml"]
    json_answer = bridge.inbox / f"{json_id}.response.json"
    xml_answer = bridge.inbox / f"{xml_id}.response.xml"

    async def answered() -> bool:
        return json_answer.exists() and xml_answer.exists()

    await eventually(answered, what="two response files")
    document = json.loads(json_answer.read_bytes())
    assert document["payload"] == {"decision": "granted", "permit_number": "TF-KZN-1"}
    assert (document["kind"], document["file"], document["case_id"]) == (
        "response",
        "first.json",
        "KZN-1",
    )
    xml = parse(xml_answer.read_bytes(), max_size=1 << 20)
    assert payload_from_element(xml, "tree-felling-permit", "1", Kind.RESPONSE) == {
        "decision": "granted",
        "permit_number": "TF-KZN-2",
    }
    assert (bridge.inbox / f"{json_id}.receipt.json").exists()
    assert (bridge.inbox / f"{xml_id}.receipt.xml").exists()
    assert sorted(seen) == sorted([json_id, xml_id])
    assert [p.name for p in bridge.outbox.iterdir()] == ["later.json.tmp"]
    assert not list(bridge.work.iterdir())
    assert not list(bridge.pending.iterdir())
    assert not list(bridge.inbox.glob("*.tmp"))


async def test_the_same_file_again_is_the_same_request(
    make_node: MakeNode, bridge: FolderBridge
) -> None:
    """A file dropped again with the same name and content is not sent a second time."""
    seen: list[str] = []
    _grant(await make_node("improvement"), seen)
    raw = json_request(TREES, case_id="KZN-3")
    drop(bridge.outbox, "again.json", raw)
    first = await eventually(lambda: _async(_sent_ids(bridge.root)), what="first file sent")
    (request_id,) = first
    await eventually(
        lambda: _async((bridge.inbox / f"{request_id}.response.json").exists()), what="response"
    )
    drop(bridge.outbox, "again.json", raw)
    await eventually(lambda: _async(not list(bridge.outbox.iterdir())), what="file taken")
    await eventually(lambda: _async(not list(bridge.work.iterdir())), what="file archived")
    assert list(_sent_ids(bridge.root)) == [request_id]
    assert not list(bridge.pending.iterdir())
    assert seen == [request_id]
    assert len(await _created(bridge.node)) == 1


async def _async(value: Any) -> Any:
    return value


async def _created(node: Node) -> list[str]:
    return [
        r.event.message_id or ""
        for r in await node.ctx.store.audit(limit=10**6)
        if r.event.event == "created"
    ]


@pytest.mark.parametrize(
    ("name", "raw", "code", "field"),
    [
        (
            "count.json",
            json_request({**TREES, "trees": [{"species": "oak", "count": "many"}]}),
            "invalid-content",
            "$.trees[0].count",
        ),
        ("address.xml", xml_request(count="0"), "invalid-content", "/request/trees/count"),
        (
            "service.json",
            json.dumps({"service": "nope", "payload": {}}).encode(),
            "unknown-service",
            "nope",
        ),
        ("broken.json", b"{", "malformed", "not JSON"),
        ("float.json", json_request({**TREES, "address": 1.5}), "invalid-content", "address"),
    ],
)
async def test_bad_files_are_rejected_with_a_reason(
    bridge: FolderBridge, name: str, raw: bytes, code: str, field: str
) -> None:
    """A file that cannot be sent goes to rejected/ with its reason naming the code and field."""
    drop(bridge.outbox, name, raw)
    reason = bridge.rejected / f"{name}.reason.txt"
    await eventually(lambda: _async(reason.exists()), what="the reason file")
    text = reason.read_text()
    assert text.startswith(f"{code}: "), text
    assert field in text, text
    assert (bridge.rejected / name).read_bytes() == raw
    assert not list(bridge.work.iterdir())
    assert not list(bridge.pending.iterdir())
    assert not await _created(bridge.node)


class BridgeProcess(ExchangeProcess):
    """``exchange bridge folder single-center`` as its own process, killed by its own pid."""

    def __init__(self, settings: Settings, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(
            ["bridge", "folder", "single-center", "--root", str(root), "--poll", "0.05"],
            ready=b"ready single-center",
            log=root.parent / "bridge.log",
        )
        self.root = root
        self.settings = settings

    async def start(self, env: dict[str, str] | None = None, **extra: str) -> None:
        """Start the bridge (``extra`` as environment variables) and wait until it consumes."""
        await super().start(env or exchange_env(self.settings, **extra))


@pytest.fixture
async def bridge_process(settings: Settings, tmp_path: Path) -> AsyncIterator[BridgeProcess]:
    """The folder bridge as a separate process (stopped after the test)."""
    process = BridgeProcess(settings, tmp_path / "folders")
    yield process
    process.terminate()


@pytest.mark.slow
@pytest.mark.chaos
async def test_bridge_killed_mid_file_sends_each_file_once(
    make_node: MakeNode, settings: Settings, bridge_process: BridgeProcess
) -> None:
    """SIGKILL while a sent file is not yet archived, and a restart: 50 files, 50 requests."""
    seen: list[str] = []
    provider = await make_node("improvement")
    _grant(provider, seen)
    root = bridge_process.root
    await bridge_process.start(EXCHANGE_FOLDER_SLOW="0.15")
    for number in range(FILES):
        if number % 2:
            drop(root / "outbox", f"KZN-{number:03d}__trees.xml", xml_request())
        else:
            drop(
                root / "outbox", f"{number:03d}.json", json_request(TREES, case_id=f"KZN-{number}")
            )

    async def sent_not_archived() -> bool:
        # Requests the provider handled outnumber the archived files: one is in .work/.
        archived = len(list((root / "sent").iterdir()))
        return archived >= 5 and len(set(seen)) > archived

    await eventually(sent_not_archived, timeout=60, what="a file sent but not archived")
    bridge_process.kill()
    claimed = [(path.name, path.read_bytes()) for path in (root / ".work").iterdir()]
    assert claimed, "killed while no file was claimed"
    (in_flight,) = [request_id_for("single-center", name, raw) for name, raw in claimed]

    async def provider_has_it() -> bool:
        return await provider.ctx.store.get_inbox(in_flight) is not None

    await eventually(provider_has_it, what="the claimed file's request at the provider")
    killed_after = len(list((root / "sent").iterdir()))
    assert killed_after < FILES, "the kill came too late to test anything"

    await bridge_process.start()

    async def all_answered() -> bool:
        return len(list((root / "inbox").glob("*.response.*"))) == FILES

    await eventually(all_answered, timeout=120, what=f"{FILES} response files")
    bridge_process.terminate()

    sent = _sent_ids(root)
    assert len(sent) == FILES
    assert Counter(seen) == Counter(set(sent)), "each request handled exactly once"
    assert await provider.ctx.store.count_inbox() == FILES
    assert not list((root / "outbox").iterdir())
    assert not list((root / ".work").iterdir())
    assert not list((root / ".pending").iterdir())
    assert not list((root / "rejected").iterdir())
    responses = {path.name.split(".", 1)[0] for path in (root / "inbox").glob("*.response.*")}
    assert responses == set(sent)
    store = SQLiteStore(settings.store_dir / "single-center.db", "single-center", SYSTEM_CLOCK)
    await store.open()
    try:
        created = [
            r.event.message_id or ""
            for r in await store.audit(limit=10**6)
            if r.event.event == "created"
        ]
        assert sorted(created) == sorted(sent), "the sender's outbox has one request per file"
        for request_id in sent:
            record = await store.get_outbox(request_id)
            assert record is not None
            assert record.kind == "request"
    finally:
        await store.close()


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
