"""The city's catalog on the real broker: handlers and senders get typed payloads either way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from exchange.config import Settings
from exchange.envelope.model import Kind
from exchange.node import IncomingRequest, Node, build_node
from exchange.signing import WireFormat
from exchange.transport.names import BusNames
from tests.bus.conftest import AMQP_URL, BUS_PARTIES, FAST, MakeNode
from tests.catalog._city import REPO, example

pytestmark = pytest.mark.rabbit

FORMATS = [WireFormat.XML, WireFormat.JSON]


@pytest.fixture
async def city_node(settings: Settings) -> AsyncIterator[MakeNode]:
    """Start nodes with the city's catalog; the queues of parties beyond the PKI are removed."""
    city = settings.model_copy(
        update={
            "catalog": REPO / "exchange/data/catalog.toml",
            "schemas_dir": REPO / "exchange/data/schemas",
        }
    )
    started: list[Node] = []

    async def make(party: str) -> Node:
        node = build_node(party, city, config=FAST)
        await node.start()
        started.append(node)
        return node

    yield make
    for node in reversed(started):
        await node.stop()
    names = BusNames(settings.bus_prefix)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for party in ("architecture", "urban-permits"):
            assert party not in BUS_PARTIES
            await channel.queue_delete(names.inbox(party))
            await channel.queue_delete(names.dead_letters(party))


async def exchange_once(
    sender: Node, provider: Node, code: str, wire_format: WireFormat, payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """Send one request; return what the handler saw, the notice's and the stored answer."""
    seen: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    notices: list[dict[str, Any] | None] = []

    @provider.handler(code)
    async def answer(request: IncomingRequest) -> dict[str, Any]:
        await seen.put(request.payload)
        assert request.envelope.payload == request.payload
        return example(code, Kind.RESPONSE)

    sender.on_notice(
        lambda notice: (
            notices.append(notice.envelope.payload if notice.envelope else None)
            if notice.kind == "response"
            else None
        )
    )
    request_id = await sender.request(code, payload, wire_format=wire_format)
    handled = await asyncio.wait_for(seen.get(), 10)
    stored = await sender.wait_answer(request_id, timeout=10)
    assert stored.kind == "response"
    assert stored.envelope is not None
    assert notices
    return handled, notices[0], stored.envelope.payload


@pytest.mark.parametrize("wire_format", FORMATS)
async def test_tree_felling_typed_in_both_formats(
    city_node: MakeNode, wire_format: WireFormat
) -> None:
    """The handler gets the typed example request; the sender gets the typed example response."""
    provider = await city_node("improvement")
    sender = await city_node("single-center")
    code = "tree-felling-permit"
    handled, noticed, stored = await exchange_once(
        sender, provider, code, wire_format, example(code, Kind.REQUEST)
    )
    assert handled == example(code, Kind.REQUEST)
    assert noticed == stored == example(code, Kind.RESPONSE)


@pytest.mark.parametrize("wire_format", FORMATS)
async def test_land_plot_info_between_departments(
    city_node: MakeNode, wire_format: WireFormat
) -> None:
    """Improvement asks Land and Property for a plot; booleans and lists arrive typed."""
    provider = await city_node("land-property")
    sender = await city_node("improvement")
    code = "land-plot-info"
    handled, noticed, stored = await exchange_once(
        sender, provider, code, wire_format, example(code, Kind.REQUEST)
    )
    assert handled == example(code, Kind.REQUEST)
    assert noticed == stored == example(code, Kind.RESPONSE)
    assert stored is not None
    assert stored["found"] is True
    assert isinstance(stored["rights"], list)


@pytest.mark.parametrize("wire_format", FORMATS)
async def test_loose_input_is_typed_before_sending(
    city_node: MakeNode, wire_format: WireFormat
) -> None:
    """Keys in any order and numbers as text (an XML file's payload) are sent in either format."""
    provider = await city_node("improvement")
    sender = await city_node("single-center")
    code = "tree-felling-permit"
    typed = example(code, Kind.REQUEST)
    loose = {key: typed[key] for key in reversed(typed)}
    loose["trees"] = [{**tree, "count": str(tree["count"])} for tree in typed["trees"]]
    handled, _, _ = await exchange_once(sender, provider, code, wire_format, loose)
    assert handled == typed
