"""A provider killed mid-transfer and started again completes it, with no corrupt object.

The provider runs as ``exchange node run improvement`` in its own session and is SIGKILLed
by its pid while a 48 MiB attachment streams in; the process started after it resumes the
partial from its durable offset (or the sender's resend brings the rest again).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from exchange.attachments.store import CHECKPOINT_BYTES
from exchange.catalog import Catalog
from exchange.config import Settings
from tests.bus.conftest import FAST, MakeNode
from tests.bus.processes import ExchangeProcess, exchange_env

pytestmark = [pytest.mark.rabbit, pytest.mark.slow, pytest.mark.chaos]

SIZE = 48 * 1024 * 1024
PAYLOAD = {
    "applicant": {"name": "Kill Test"},
    "address": "Kazan",
    "trees": [{"species": "oak", "count": 1}],
}


async def test_provider_killed_mid_transfer_completes_after_restart(
    make_node: MakeNode, settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL mid-stream, start again: the handler reads exactly the sent bytes."""
    catalog_file = tmp_path / "catalog.toml"
    catalog_file.write_text(
        settings.catalog.read_text().replace("max_size = 65536", f"max_size = {SIZE}")
    )
    big = settings.model_copy(update={"catalog": catalog_file})
    sender = await make_node(
        "single-center",
        replace(FAST, attachment_chunk=256 * 1024, receipt_timeouts=(3.0,)),
        catalog=Catalog.load(catalog_file, settings.schemas_dir),
    )
    plan = tmp_path / "site-plan.pdf"
    plan.write_bytes(os.urandom(SIZE))
    digest = hashlib.sha256(plan.read_bytes()).hexdigest()
    objects = settings.store_dir / "improvement.attachments"
    partial = objects / "partial" / f"{digest}.part"
    env = exchange_env(big)
    log = tmp_path / "provider.log"

    def process() -> ExchangeProcess:
        return ExchangeProcess(
            ["node", "run", "improvement", "--handlers", "tests.bus.attachment_handlers:register"],
            ready=b"ready improvement",
            log=log,
        )

    first = process()
    await first.start(env)
    try:
        request_id = await sender.request("tree-felling-permit", PAYLOAD, attachments=[plan])
        await _grown_past(partial, CHECKPOINT_BYTES + 1024 * 1024)
        first.kill()
    finally:
        first.terminate()
    assert not (objects / "objects" / digest[:2] / digest).exists(), "killed too late"

    second = process()
    await second.start(env)
    try:
        answer = await sender.wait_answer(request_id, timeout=120)
    finally:
        second.terminate()

    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.payload == {
        "decision": "granted",
        "note": f"site-plan.pdf={digest}",
    }
    installed = objects / "objects" / digest[:2] / digest
    assert hashlib.sha256(installed.read_bytes()).hexdigest() == digest
    assert list((objects / "partial").iterdir()) == []
    assert list((objects / "tmp").iterdir()) == []


async def _grown_past(path: Path, size: int, timeout: float = 60.0) -> None:
    """Wait (polling closely: the transfer is fast) until ``path`` holds ``size`` bytes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (path.exists() and path.stat().st_size >= size):
        if loop.time() > deadline:
            raise AssertionError(f"{path} never grew past {size} bytes")
        await asyncio.sleep(0.005)
