"""Least-privilege broker users: a party's node works as its own user and can do no more."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from exchange.config import Settings
from exchange.node import IncomingRequest, Node, NodeConfig, build_node
from exchange.signing import WireFormat
from exchange.transport.names import BusNames
from exchange.transport.users import apply_grants, delete_users, grants, new_password, url_for
from tests.bus.conftest import AMQP_URL, BUS_PARTIES, FAST, delete_topology
from tests.bus.helpers import wait_event

pytestmark = pytest.mark.rabbit


@pytest.fixture
async def users(settings: Settings) -> AsyncIterator[tuple[Settings, dict[str, str]]]:
    """A fresh prefix with its topology declared by the admin, and a user per party."""
    prefix = f"tu{uuid.uuid4().hex[:8]}."
    admin = settings.model_copy(update={"bus_prefix": prefix})
    names = BusNames(prefix)
    grant_list = grants(names, list(BUS_PARTIES))
    passwords = apply_grants(grant_list, "/")
    urls = {user: url_for(AMQP_URL, user, password) for user, password in passwords.items()}
    try:
        yield admin, urls
    finally:
        delete_users(list(passwords))
        await delete_topology(names, BUS_PARTIES)


async def own_user_nodes(
    admin: Settings, urls: dict[str, str], parties: tuple[str, ...], config: NodeConfig
) -> list[Node]:
    """Nodes of ``parties``, each logged in as its own broker user (started later).

    The admin (guest) declares the topology once first, as `exchange topology apply` does.
    """
    setup = build_node("land-property", admin, config=FAST)
    await setup.start()
    await setup.stop()
    nodes = []
    for party in parties:
        own = admin.model_copy(
            update={"amqp_url": urls[f"{admin.bus_prefix}{party}"], "declare_topology": False}
        )
        nodes.append(build_node(party, own, config=replace(config, declare_topology=False)))
    return nodes


def test_grants_confine_each_party_to_its_own_queues() -> None:
    """Each party reads its inbox, dead letters, audit acknowledgments, admin commands and
    attachment chunks only, writes the bus only, configures nothing; the collector reads the
    audit queue, writes the bus and the feed; the console reads nothing and writes the bus (its
    admin commands)."""
    names = BusNames("kzn.")
    by_user = {grant.user: grant for grant in grants(names, ["improvement", "single-center"])}
    improvement = by_user["kzn.improvement"]
    assert improvement.configure == "^$"
    assert improvement.write == r"^kzn\.bus$"
    assert improvement.read == (
        r"^(kzn\.party\.improvement\.inbox|kzn\.party\.improvement\.dlq"
        r"|kzn\.party\.improvement\.audit\-acks|kzn\.party\.improvement\.admin"
        r"|kzn\.party\.improvement\.attachments)$"
    )
    assert by_user["kzn.collector"].read == r"^kzn\.audit$"
    assert by_user["kzn.collector"].write == r"^(kzn\.bus|kzn\.audit\.feed)$"
    assert (by_user["kzn.console"].read, by_user["kzn.console"].write) == ("^$", r"^kzn\.bus$")


async def test_nodes_run_as_their_own_users(users: tuple[Settings, dict[str, str]]) -> None:
    """With per-party users and no declaring, a request is answered; other inboxes stay shut."""
    admin, urls = users
    nodes = await own_user_nodes(admin, urls, ("improvement", "single-center"), FAST)
    try:
        provider, sender = nodes

        @provider.handler("tree-felling-permit")
        async def grant(request: IncomingRequest) -> dict[str, Any]:
            return {"decision": "granted"}

        for node in nodes:
            await node.start()
        payload = {
            "applicant": {"name": "A"},
            "address": "Kazan",
            "trees": [{"species": "oak", "count": 1}],
        }
        request_id = await sender.request(
            "tree-felling-permit", payload, wire_format=WireFormat.JSON
        )
        answer = await sender.wait_answer(request_id, timeout=15)
        assert answer.kind == "response"
    finally:
        for node in nodes:
            await node.stop()

    connection = await aio_pika.connect(urls[f"{admin.bus_prefix}single-center"])
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(BusNames(admin.bus_prefix).inbox("improvement"))
        with pytest.raises(ChannelAccessRefused):
            await queue.get(fail=False)


def test_url_for_quotes_credentials(tmp_path: Path) -> None:
    """Credentials with URL-special characters survive in the AMQP URL."""
    url = url_for("amqp://guest:guest@127.0.0.1:5672/", "kzn.a-b", "p@ss/w:rd")
    assert url == "amqp://kzn.a-b:p%40ss%2Fw%3Ard@127.0.0.1:5672/"


def test_new_passwords_never_look_like_an_option() -> None:
    """Generated passwords never start with '-' (rabbitmqctl would refuse the command)."""
    passwords = {new_password() for _ in range(2000)}
    assert len(passwords) == 2000
    assert not any(password.startswith("-") for password in passwords)


async def test_chunks_are_taken_only_from_the_senders_broker_user(
    users: tuple[Settings, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With per-party users, a chunk of an announced attachment published by another party's
    broker user is quarantined (broker-user-mismatch); the sender's own chunks complete it."""
    admin, urls = users
    parties = ("improvement", "single-center", "land-property")
    nodes = await own_user_nodes(admin, urls, parties, replace(FAST, attachment_chunk=1024))
    try:
        provider, sender, intruder = nodes

        @provider.handler("tree-felling-permit")
        async def grant(request: IncomingRequest) -> dict[str, Any]:
            return {"decision": "granted", "note": request.attachments[0].sha256}

        for node in nodes:
            await node.start()
        monkeypatch.setattr(sender.uploader, "start", lambda *args: None)  # sent by hand below
        photo = b"\xff\xd8 a photo of a birch" * 100
        path = Path(admin.store_dir) / "birch.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(photo)
        payload = {
            "applicant": {"name": "A"},
            "address": "Kazan",
            "trees": [{"species": "oak", "count": 1}],
        }
        request_id = await sender.request(
            "tree-felling-permit", payload, wire_format=WireFormat.JSON, attachments=[path]
        )
        record = await sender.sent_request(request_id)
        assert record is not None
        envelope = sender.stored_envelope(record.wire)
        assert envelope is not None
        [attachment] = envelope.attachments

        await intruder.ctx.attachments.put(path)  # the same bytes, sent by the wrong party
        await intruder.uploader.send("improvement", attachment)
        event = await wait_event(provider, "quarantined", timeout=15)
        assert event.detail["code"] == "broker-user-mismatch"
        assert provider.ctx.attachments.objects() == []

        await sender.uploader.send("improvement", attachment)
        answer = await sender.wait_answer(request_id, timeout=15)
        assert answer.envelope is not None
        assert answer.envelope.payload == {"decision": "granted", "note": attachment.sha256}
        assert len(photo) == attachment.size
    finally:
        for node in nodes:
            await node.stop()
