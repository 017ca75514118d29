"""Attachments over the real broker: bound to the signed request, checked before the handler.

The gate holds a request until every attachment it lists arrived and matches; tampering is
``attachment-mismatch``, a lost chunk comes again with the sender's resend, chunks nobody
announced are quarantined, and what the catalog does not allow never leaves the sender.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from exchange.attachments import Chunk, Outgoing
from exchange.attachments.chunks import CONTENT_TYPE
from exchange.catalog import Catalog
from exchange.config import Settings
from exchange.exceptions import AttachmentRefused
from exchange.node import LATER, IncomingRequest, Later, Node, Reply
from exchange.node.store.base import InboxState
from exchange.signing import WireFormat
from tests.bus.attachment_handlers import read_hashes
from tests.bus.conftest import AMQP_URL, FAST, MakeNode
from tests.bus.helpers import eventually, wait_event
from tests.bus.test_flow import trees

pytestmark = pytest.mark.rabbit

SERVICE = "tree-felling-permit"
TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}
SMALL = replace(FAST, attachment_chunk=4096, attachment_grace=0.5)


def sha(data: bytes) -> str:
    """SHA-256 hex of ``data``."""
    return hashlib.sha256(data).hexdigest()


async def stream(data: bytes, block: int = 1000) -> AsyncIterator[bytes]:
    """``data`` as an async byte stream."""
    for offset in range(0, len(data), block):
        yield data[offset : offset + block]


def granting(provider: Node, handled: list[IncomingRequest]) -> None:
    """Register a handler that notes each request and grants it, naming what it read."""

    @provider.handler(SERVICE)
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        handled.append(request)
        return {"decision": "granted", "note": read_hashes(request)}


async def queue_depth(queue: str) -> int:
    """Messages ready in ``queue``."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def take_one(queue: str) -> bytes:
    """Take (and ack) the first message of ``queue``: a message lost on the way."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        source = await channel.get_queue(queue)
        message = await source.get(no_ack=True, fail=True)
        assert message is not None
        return message.body


@pytest.mark.parametrize("wire_format", [WireFormat.XML, WireFormat.JSON])
async def test_attachments_reach_the_handler_intact(
    make_node: MakeNode, tmp_path: Path, wire_format: WireFormat
) -> None:
    """A path and a stream travel in chunks; the handler reads both through handles."""
    provider = await make_node("improvement", SMALL)
    sender = await make_node("single-center", SMALL)
    handled: list[IncomingRequest] = []
    granting(provider, handled)
    plan = tmp_path / "site-plan.pdf"
    plan.write_bytes(b"%PDF-1.4\n" + os.urandom(30_000))
    photo = os.urandom(10_001)

    request_id = await sender.request(
        SERVICE,
        trees(wire_format),
        wire_format=wire_format,
        attachments=[plan, Outgoing(stream(photo), name="birch.jpg")],
    )
    answer = await sender.wait_answer(request_id, timeout=20)

    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload is not None
    assert answer.envelope.payload["note"] == (
        f"site-plan.pdf={sha(plan.read_bytes())} birch.jpg={sha(photo)}"
    )
    [request] = handled
    assert [(a.name, a.media_type, a.size) for a in request.attachments] == [
        ("site-plan.pdf", "application/pdf", len(plan.read_bytes())),
        ("birch.jpg", "image/jpeg", len(photo)),
    ]
    assert provider.ctx.attachments.objects() == sorted([sha(plan.read_bytes()), sha(photo)])


async def test_an_over_size_attachment_is_refused_before_upload(
    make_node: MakeNode, tmp_path: Path
) -> None:
    """Past the catalog's max size: attachment-refused at the sender, nothing stored or sent."""
    sender = await make_node("single-center", SMALL)
    big = tmp_path / "huge.pdf"
    big.write_bytes(b"x" * 70_000)  # the test catalog allows 65,536 bytes

    with pytest.raises(AttachmentRefused, match="65536"):
        await sender.request(SERVICE, TREES, attachments=[big])
    with pytest.raises(AttachmentRefused, match="65536"):  # a stream: refused while copied
        await sender.request(
            SERVICE, TREES, attachments=[Outgoing(stream(b"x" * 70_000), name="huge.pdf")]
        )
    with pytest.raises(AttachmentRefused, match="text/plain"):
        await sender.request(
            SERVICE, TREES, attachments=[Outgoing(stream(b"hi"), name="notes.txt")]
        )

    assert [r for r in await sender.ctx.store.audit() if r.event.event == "created"] == []
    assert sender.ctx.attachments.objects() == []
    assert await queue_depth(sender.ctx.names.attachments("improvement")) == 0


async def test_the_receiver_refuses_what_the_catalog_does_not_allow(
    make_node: MakeNode, settings: Settings, tmp_path: Path
) -> None:
    """A request listing a type its service refuses gets attachment-refused from the provider."""
    provider = await make_node("improvement", SMALL)
    # A sender whose catalog (another version, say) allows text: the provider's decides.
    lax = tmp_path / "catalog.toml"
    lax.write_text(
        settings.catalog.read_text().replace('"image/png"]', '"image/png", "text/plain"]')
    )
    sender = await make_node(
        "single-center", SMALL, catalog=Catalog.load(lax, settings.schemas_dir)
    )
    granting(provider, [])

    request_id = await sender.request(
        SERVICE, TREES, attachments=[Outgoing(stream(b"plain text"), name="notes.txt")]
    )
    answer = await sender.wait_answer(request_id, timeout=20)
    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "attachment-refused"


@pytest.mark.parametrize("forged", ["rehashed", "bit-flipped"])
async def test_a_tampered_chunk_is_attachment_mismatch(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch, forged: str
) -> None:
    """Bytes other than the signed SHA-256 (chunk re-hashed or not) fault attachment-mismatch."""
    provider = await make_node("improvement", SMALL)
    sender = await make_node("single-center", SMALL)
    handled: list[IncomingRequest] = []
    granting(provider, handled)
    monkeypatch.setattr(sender.uploader, "start", lambda *args: None)  # we send the chunks
    photo = os.urandom(8192)

    request_id = await sender.request(
        SERVICE, TREES, attachments=[Outgoing(stream(photo), name="birch.jpg")]
    )
    await eventually(
        lambda: _holding(provider, request_id), what="the provider holding the request"
    )
    queue = sender.ctx.names.attachments("improvement")
    bad = bytearray(photo[:4096])
    bad[100] ^= 0xFF
    first = Chunk.of(sha(photo), 0, len(photo), bytes(bad)).encode()
    if forged == "bit-flipped":  # the chunk's own hash still names the genuine bytes
        good = Chunk.of(sha(photo), 0, len(photo), photo[:4096])
        first = Chunk(good.sha256, 0, good.total, good.digest, bytes(bad)).encode()
    for body in (first, Chunk.of(sha(photo), 4096, len(photo), photo[4096:]).encode()):
        await sender.ctx.bus.publish(sender.ctx.names.bus, queue, body, content_type=CONTENT_TYPE)

    answer = await sender.wait_answer(request_id, timeout=20)
    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "attachment-mismatch"
    assert handled == []
    assert provider.ctx.attachments.objects() == []
    received = await provider.ctx.store.get_inbox(request_id)
    assert received is not None
    assert received.state is InboxState.REJECTED


async def _holding(provider: Node, request_id: str) -> bool:
    return provider.gate.holding(request_id)


async def test_a_lost_chunk_is_made_good_by_the_resend(make_node: MakeNode, settings: Any) -> None:
    """A chunk lost on the way: no receipt, the sender resends request and chunks, all arrive."""
    sender = await make_node("single-center", SMALL)
    plan = os.urandom(40_000)  # 10 chunks
    queue = sender.ctx.names.attachments("improvement")

    request_id = await sender.request(
        SERVICE, TREES, attachments=[Outgoing(stream(plan), name="site-plan.pdf")]
    )
    await eventually(lambda: _depth_at_least(queue, 10), what="all chunks on the queue")
    assert (await take_one(queue)).startswith(b"KZA1")  # the first chunk: lost on the way

    provider = await make_node("improvement", SMALL)
    handled: list[IncomingRequest] = []
    granting(provider, handled)
    answer = await sender.wait_answer(request_id, timeout=30)

    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload is not None
    assert answer.envelope.payload["note"] == f"site-plan.pdf={sha(plan)}"
    resent = await wait_event(sender, "resent", request_id)
    assert resent.message_id == request_id
    assert provider.ctx.attachments.path(sha(plan)).read_bytes() == plan


async def _depth_at_least(queue: str, count: int) -> bool:
    return await queue_depth(queue) >= count


async def test_an_unexpected_chunk_is_quarantined(make_node: MakeNode) -> None:
    """A chunk no verified envelope announced goes to the quarantine, audited; nothing stored."""
    provider = await make_node("improvement", SMALL)
    stray = os.urandom(2000)
    body = Chunk.of(sha(stray), 0, len(stray), stray).encode()

    await provider.ctx.bus.publish(
        provider.ctx.names.bus,
        provider.ctx.names.attachments("improvement"),
        body,
        content_type=CONTENT_TYPE,
    )
    event = await wait_event(provider, "quarantined")
    assert event.detail["code"] == "chunk-unexpected"
    assert event.digest == sha(body)
    assert provider.ctx.attachments.objects() == []
    garbage = b"not a chunk at all"
    await provider.ctx.bus.publish(
        provider.ctx.names.bus,
        provider.ctx.names.attachments("improvement"),
        garbage,
        content_type=CONTENT_TYPE,
    )

    async def invalid() -> bool:
        events = [e for e in await provider.ctx.store.audit() if e.event.event == "quarantined"]
        return any(e.event.detail.get("code") == "chunk-invalid" for e in events)

    await eventually(invalid, what="the malformed chunk quarantined")


async def test_attachments_not_complete_in_time_are_attachment_missing(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request whose attachments never arrive is refused with attachment-missing."""
    provider = await make_node("improvement", replace(SMALL, attachment_wait=timedelta(seconds=1)))
    sender = await make_node("single-center", replace(SMALL, receipt_timeouts=(60.0,)))
    handled: list[IncomingRequest] = []
    granting(provider, handled)
    monkeypatch.setattr(sender.uploader, "start", lambda *args: None)  # nothing is uploaded

    request_id = await sender.request(
        SERVICE, TREES, attachments=[Outgoing(stream(b"%PDF"), name="plan.pdf")]
    )
    answer = await sender.wait_answer(request_id, timeout=20)
    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "attachment-missing"
    assert "plan.pdf" in answer.envelope.fault.text
    assert handled == []


async def test_a_restart_does_not_restart_the_attachment_missing_bound(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider restarts while it holds a request for attachments that never come: the
    request, resent, is held again and refused by the bound that ran from its first hold."""
    wait = replace(SMALL, attachment_wait=timedelta(seconds=3))
    first = await make_node("improvement", wait)
    sender = await make_node("single-center", replace(SMALL, receipt_timeouts=(0.5,)))
    monkeypatch.setattr(sender.uploader, "start", lambda *args: None)  # nothing is uploaded
    request_id = await sender.request(
        SERVICE, TREES, attachments=[Outgoing(stream(b"%PDF"), name="plan.pdf")]
    )
    await eventually(lambda: _holding(first, request_id), what="the request held")
    held_since = first.gate.first_seen(request_id)
    assert held_since is not None
    await first.stop()
    restarted_at = sender.ctx.clock.now()
    second = await make_node("improvement", wait)
    granting(second, [])
    answer = await sender.wait_answer(request_id, timeout=20)
    assert answer.envelope is not None
    assert answer.envelope.fault is not None
    assert answer.envelope.fault.code == "attachment-missing"
    bound = (held_since + timedelta(seconds=3)).isoformat()
    assert f"not complete by {bound}" in answer.envelope.fault.text
    assert held_since < restarted_at


async def test_chunks_resent_after_completion_are_dropped(make_node: MakeNode) -> None:
    """Chunks of an attachment already held (a resend) are neither stored again nor quarantined."""
    provider = await make_node("improvement", SMALL)
    sender = await make_node("single-center", SMALL)
    granting(provider, [])
    data = os.urandom(5000)
    request_id = await sender.request(
        SERVICE, TREES, attachments=[Outgoing(stream(data), name="a.png")]
    )
    await sender.wait_answer(request_id, timeout=20)
    [attachment] = (await _envelope(sender, request_id)).attachments
    await sender.uploader.send("improvement", attachment)
    await eventually(
        lambda: _depth_zero(sender.ctx.names.attachments("improvement")), what="queue drained"
    )
    quarantined = [e for e in await provider.ctx.store.audit() if e.event.event == "quarantined"]
    assert quarantined == []


async def _depth_zero(queue: str) -> bool:
    await asyncio.sleep(0.2)
    return await queue_depth(queue) == 0


async def _envelope(node: Node, request_id: str) -> Any:
    record = await node.sent_request(request_id)
    assert record is not None
    envelope = node.stored_envelope(record.wire)
    assert envelope is not None
    return envelope


async def test_a_response_carries_a_permit_pdf(make_node: MakeNode) -> None:
    """A handler's Reply with a PDF: the requester is told once the PDF arrived intact."""
    provider = await make_node("improvement", SMALL)
    sender = await make_node("single-center", SMALL)
    permit = b"%PDF-1.7 signed permit " + os.urandom(9000)

    @provider.handler(SERVICE)
    async def grant(request: IncomingRequest) -> Reply:
        return Reply(
            {"decision": "granted", "permit_number": "TF-7"},
            [Outgoing(stream(permit), name="permit.pdf")],
        )

    request_id = await sender.request(SERVICE, TREES)
    answer = await sender.wait_answer(request_id, timeout=20)

    assert answer.kind == "response"
    assert answer.envelope is not None
    [file] = sender.attachment_files(answer.envelope)
    assert (file.name, file.media_type, file.size) == ("permit.pdf", "application/pdf", len(permit))
    with file.open() as handle:
        assert handle.read() == permit


async def test_retention_removes_attachments_of_pruned_messages_only(make_node: MakeNode) -> None:
    """Metadata-only: a finished request's attachment goes with its content; an open one's stays."""
    pruning = replace(SMALL, metadata_only=True, prune_interval=0.1, attachment_settle=0.0)
    provider = await make_node("improvement", pruning)
    sender = await make_node("single-center", SMALL)
    open_ids: list[str] = []

    @provider.handler(SERVICE)
    async def decide(request: IncomingRequest) -> dict[str, Any] | Later:
        if request.attachments[0].name == "keep.png":
            open_ids.append(request.message_id)
            return LATER  # still open: its content and attachment are kept
        return {"decision": "granted"}

    done, kept = os.urandom(3000), os.urandom(3000)
    finished = await sender.request(
        SERVICE, TREES, attachments=[Outgoing(stream(done), name="done.png")]
    )
    await sender.request(SERVICE, TREES, attachments=[Outgoing(stream(kept), name="keep.png")])
    await sender.wait_answer(finished, timeout=20)
    await eventually(lambda: _only(provider, sha(kept)), what="the finished one's attachment gone")
    assert open_ids
    assert sorted(sender.attachments.objects()) == sorted([sha(done), sha(kept)])


async def _only(node: Node, sha256: str) -> bool:
    return node.attachments.objects() == [sha256]
