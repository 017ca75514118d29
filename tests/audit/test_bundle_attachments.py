"""Evidence bundles with attachments: hashes always, files with a flag, checked offline."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.attachments import Outgoing
from exchange.audit.central import CentralStore
from exchange.audit.collector import Collector
from exchange.config import Settings
from exchange.evidence.bundle import check_bundle, export_bundle
from exchange.exceptions import BundleInvalid
from exchange.node import IncomingRequest, build_node
from exchange.node.factory import attachment_store, open_store
from exchange.node.store.base import Store
from exchange.pki.trust import TrustStore
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from tests.audit._live import TREES, caught_up, local_records, until
from tests.bus.conftest import AMQP_URL, FAST

pytestmark = pytest.mark.rabbit


async def _stream(data: bytes) -> Any:
    yield data


async def test_bundle_binds_attachments_to_their_signed_envelope(
    settings: Settings, central: CentralStore, tmp_path: Path
) -> None:
    """Exported with files, a bundle checks each file's hash; a changed file or entry fails."""
    trust = TrustStore.from_dir(settings.certs_dir)
    collector = Collector(
        Bus(AMQP_URL), BusNames(settings.bus_prefix), central, trust, SYSTEM_CLOCK
    )
    await collector.start()
    sender = build_node("single-center", settings, config=FAST)
    provider = build_node("improvement", settings, config=FAST)

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        return {"decision": "granted"}

    plan = b"%PDF-1.4 " + os.urandom(3000)
    try:
        for node in (provider, sender):
            await node.start()
        request_id = await sender.request(
            "tree-felling-permit",
            TREES,
            case_id="KZN-ATT-1",
            attachments=[Outgoing(_stream(plan), name="plan.pdf")],
        )
        assert (await sender.wait_answer(request_id, timeout=20)).kind == "response"
    finally:
        for node in (sender, provider):
            await node.stop()
    try:
        local = {
            p: r
            for p, r in (await local_records(settings)).items()
            if p in ("single-center", "improvement")
        }
        await until(lambda: caught_up(central, local), what="the collector to catch up")
        stores: dict[str, Store] = {}
        for party in local:
            stores[party] = open_store(party, settings, SYSTEM_CLOCK)
            await stores[party].open()
        files = tmp_path / "bundle.json.files"
        try:
            bundle = await export_bundle(
                central,
                "KZN-ATT-1",
                stores,
                SYSTEM_CLOCK.now(),
                attachment_stores={p: attachment_store(p, settings) for p in local},
                files=files,
            )
        finally:
            for store in stores.values():
                await store.close()
    finally:
        await collector.stop()

    [entry] = bundle["attachments"]
    assert (entry["message_id"], entry["name"], entry["size"]) == (request_id, "plan.pdf", 3009)
    assert (files / entry["sha256"]).read_bytes() == plan
    raw = json.dumps(bundle).encode()
    report = check_bundle(raw, trust, files=files)
    assert (report.attachments, report.attachment_files) == (1, 1)
    assert check_bundle(raw, trust).attachment_files == 0  # hashes only: still bound

    (files / entry["sha256"]).write_bytes(plan[:-1] + b"X")
    with pytest.raises(BundleInvalid, match="not the signed file"):
        check_bundle(raw, trust, files=files)
    entry["size"] += 1
    with pytest.raises(BundleInvalid, match="not listed so"):
        check_bundle(json.dumps(bundle).encode(), trust)
